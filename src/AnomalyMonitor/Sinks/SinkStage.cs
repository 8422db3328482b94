using System.Diagnostics;
using AnomalyMonitor.Ingest;
using AnomalyMonitor.Pipeline;
using AnomalyMonitor.Telemetry;
using Microsoft.Extensions.Logging;

namespace AnomalyMonitor.Sinks;

/// <summary>
/// Runs every sink over each judged batch, in registration order, then settles the batch's items with
/// their sources (file move, MQTT acknowledgement): an item is acknowledged only after every durable sink
/// recorded it. A durable sink that waits out a storage failure holds the stage, and so the pipeline,
/// until it writes again or the service stops; then the batch is handed back, never acknowledged.
/// </summary>
public sealed class SinkStage(IEnumerable<IVerdictSink> sinks, MonitorMetrics metrics, ILogger<SinkStage> logger)
{
    private readonly IVerdictSink[] _sinks = [.. sinks];
    private long _settled;

    /// <summary>Items judged and settled since start.</summary>
    public long Settled => Interlocked.Read(ref _settled);

    /// <summary>False when the batch was handed back (the service stopped while a durable sink waited).</summary>
    public async ValueTask<bool> WriteAsync(JudgedBatch batch, CancellationToken cancellationToken)
    {
        foreach (var sink in _sinks)
        {
            try
            {
                await sink.WriteAsync(batch, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                HandBack(batch, "the service stopped before the batch was recorded");
                return false;
            }
            catch (Exception e) when (!sink.Durable && e is not OutOfMemoryException)
            {
                Log.SinkFailed(logger, sink.GetType().Name, $"{batch.Count} item(s)", e.Message);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // Not a storage error (those are waited out): a bug. The items go back to their sources to be retried.
                Log.BatchFailed(logger, e, batch.Count);
                HandBack(batch, e.Message);
                return false;
            }
        }
        for (int i = 0; i < batch.Count; i++)
        {
            var d = batch.Items[i];
            metrics.Latency.Observe(Stopwatch.GetElapsedTime(d.Item.ArrivalTimestamp).TotalSeconds);
            d.Release(batch.Verdicts[i].IsAnomaly ? ItemResult.Anomaly : ItemResult.Normal);
        }
        Interlocked.Add(ref _settled, batch.Count);
        return true;
    }

    private static void HandBack(JudgedBatch batch, string reason)
    {
        foreach (var d in batch.Items) d.Release(ItemResult.HandBack(reason));
    }
}
