using AnomalyMonitor.Pipeline;

namespace AnomalyMonitor.Tests.Support;

/// <summary>
/// Holds the scoring loop inside the next batch until released: whatever waits on a batch boundary (a model
/// swap, a body's settlement) then waits for certain, not by timing.
/// </summary>
public sealed class ScoringHold : IDisposable
{
    private readonly ManualResetEventSlim _entered = new();
    private readonly ManualResetEventSlim _release = new();
    private readonly ScoringStage _stage;

    public ScoringHold(TestService service)
    {
        _stage = service.App.Services.GetRequiredServiceOf<ScoringStage>();
        _stage.BeforeScoring = _ =>
        {
            _entered.Set();
            _release.Wait(TimeSpan.FromSeconds(60));
            return null;
        };
    }

    /// <summary>Waits until the loop is inside a batch.</summary>
    public void Entered() => Assert.True(_entered.Wait(TimeSpan.FromSeconds(30)), "the scoring loop took a batch");

    public void Release() => _release.Set();

    public void Dispose()
    {
        _stage.BeforeScoring = null;
        _release.Set();
        _entered.Dispose();
        _release.Dispose();
    }
}
