using System.Collections.Concurrent;
using AnomalyMonitor.Ingest;

namespace AnomalyMonitor.Tests.Support;

/// <summary>A source that only records what it hears back: how many times each item was settled and held.</summary>
public sealed class RecordingSource : IIngestSource
{
    public string Name => "recording";

    public ConcurrentDictionary<string, int> Settles { get; } = new();
    public ConcurrentDictionary<string, int> Helds { get; } = new();
    public ConcurrentQueue<IngestItem> Settled { get; } = new();

    public void Settle(IngestItem item)
    {
        Settles.AddOrUpdate(item.Id, 1, (_, n) => n + 1);
        Settled.Enqueue(item);
    }

    public void Held(IngestItem item) => Helds.AddOrUpdate(item.Id, 1, (_, n) => n + 1);

    public IngestItem Item(string id, byte[]? payload = null, bool keepVerdicts = false) =>
        new() { Source = this, Id = id, Label = "recording", Payload = payload ?? [], KeepVerdicts = keepVerdicts };

    /// <summary>
    /// Sends one more normal image and waits for it to settle. A second settlement of an earlier item would
    /// have come from the pipeline's threads before they finished this later one, so after it a count of one
    /// means exactly once, without a fixed wait.
    /// </summary>
    public async Task SentinelSettledAsync(Intake intake, byte[] png)
    {
        var sentinel = Item("sentinel-" + Guid.NewGuid().ToString("N")[..8], png);
        if (!await intake.SubmitAsync(sentinel, CancellationToken.None)) throw new InvalidOperationException("the intake refused the sentinel");
        await Wait.UntilAsync(() => Settles.ContainsKey(sentinel.Id), "the sentinel settled");
    }
}
