using AnomalyMonitor.Pipeline;

namespace AnomalyMonitor.Sinks;

/// <summary>
/// One consumer of judged batches (metrics, the page's history, evidence, the sample store, the alert
/// outbox). The sink stage calls each once per batch and settles the batch's images with their sources
/// only after every durable sink has returned.
/// </summary>
public interface IVerdictSink
{
    /// <summary>
    /// True when an item may not be acknowledged before this sink has recorded it. A durable sink waits out a
    /// storage failure (see DurableWrite) rather than throw; a non-durable one that throws is logged and skipped.
    /// </summary>
    bool Durable { get; }

    /// <summary>
    /// True when the sink reads what sinks registered before it wrote into the batch (the alert sink reads the
    /// evidence paths): it runs after all of them. Sinks between two such barriers run side by side.
    /// </summary>
    bool ReadsEarlierSinks => false;

    ValueTask WriteAsync(JudgedBatch batch, CancellationToken cancellationToken);
}
