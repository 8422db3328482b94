using System.Diagnostics;
using AnomalyMonitor.Core.Imaging;

namespace AnomalyMonitor.Ingest;

public enum Outcome
{
    Normal,
    Anomaly,
    Rejected,
    /// <summary>Not judged (shutdown, or a failure): the source keeps it to be judged again.</summary>
    HandedBack,
}

public sealed record ItemResult(Outcome Outcome, RejectReason? Reason = null, string? Detail = null)
{
    public static readonly ItemResult Normal = new(Outcome.Normal);
    public static readonly ItemResult Anomaly = new(Outcome.Anomaly);
    public static readonly ItemResult HandedBack = new(Outcome.HandedBack);

    /// <summary>Handed back because of a failure, which the source's retry reports if it gives up.</summary>
    public static ItemResult HandBack(string reason) => new(Outcome.HandedBack, null, reason);
}

/// <summary>How a source hears what became of its item: move the file, acknowledge the message.</summary>
public interface IItemCompletion
{
    /// <summary>Called exactly once per item, after its result is durably recorded. Must not block.</summary>
    void Complete(IngestItem item, ItemResult result);

    /// <summary>The item is durably held for the first model (learning state) and will be judged later.</summary>
    void Held(IngestItem item);
}

/// <summary>One image on its way through the pipeline: encoded bytes from a source, or pixels already decoded from a batch file.</summary>
public sealed class IngestItem
{
    private int _completed;

    public required string Id { get; init; }
    public required string Source { get; init; }
    public DateTimeOffset ReceivedAt { get; init; }
    /// <summary>Stopwatch timestamp at arrival, for the end-to-end latency histogram.</summary>
    public long ArrivalTimestamp { get; init; } = Stopwatch.GetTimestamp();
    public ReadOnlyMemory<byte> Payload { get; init; }
    /// <summary>Pixels in the model layout when a batch file was already decoded; otherwise null.</summary>
    public float[]? Pixels { get; init; }
    public IReadOnlyDictionary<string, string>? Metadata { get; init; }
    public IItemCompletion? Completion { get; set; }

    /// <summary>Set once the item is in the held set, so a later completion is the final one.</summary>
    public bool WasHeld { get; set; }

    public void Complete(ItemResult result)
    {
        if (Interlocked.Exchange(ref _completed, 1) == 0) Completion?.Complete(this, result);
    }
}
