namespace AnomalyMonitor.Tests.Support;

/// <summary>
/// Tests that train with TorchSharp, or change its process-wide state (the seed, the thread count), run
/// in this collection: one at a time, after the parallel tests, so that a seeded run is reproducible and
/// no other test's verdicts move while it trains.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class TorchCollection
{
    public const string Name = "torch";
}
