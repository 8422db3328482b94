using AnomalyMonitor.Pipeline;

namespace AnomalyMonitor.Sinks;

/// <summary>
/// One consumer of judged batches (metrics, the page's history, evidence, the alert outbox, the sample
/// store). The sink stage calls each in registration order, once per batch, and settles the batch's items
/// with their sources only after every durable sink has returned.
/// </summary>
public interface IVerdictSink
{
    /// <summary>
    /// True when an item may not be acknowledged before this sink has recorded it. A durable sink waits out a
    /// storage failure (see DurableWrite) rather than throw; a non-durable one that throws is logged and skipped.
    /// </summary>
    bool Durable { get; }

    ValueTask WriteAsync(JudgedBatch batch, CancellationToken cancellationToken);
}
