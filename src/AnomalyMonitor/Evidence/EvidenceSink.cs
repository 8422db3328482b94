using AnomalyMonitor.Pipeline;
using AnomalyMonitor.Sinks;
using AnomalyMonitor.Telemetry;
using Microsoft.Extensions.Logging;

namespace AnomalyMonitor.Evidence;

/// <summary>
/// Names each anomaly's evidence (original, reconstruction, heatmap, record), so the alert sink can carry the
/// paths, and queues the files to the store's writer. Not durable: evidence that cannot be written is
/// counted and logged, and the verdict and its alert go on without it.
/// </summary>
internal sealed class EvidenceSink(EvidenceStore evidence, MonitorMetrics metrics, TimeProvider time, ILogger<EvidenceSink> logger) : IVerdictSink
{
    // A flood of anomalies outruns the writer by hundreds a second: one line a minute says so, not one per skip.
    private readonly ReportThrottle _skipped = new(TimeSpan.FromMinutes(1), time);

    public bool Durable => false;

    public ValueTask WriteAsync(JudgedBatch batch, CancellationToken cancellationToken)
    {
        for (int i = 0; i < batch.Count; i++)
        {
            if (!batch.Verdicts[i].IsAnomaly || batch.Reconstructions[i] is not { } reconstruction || batch.ErrorMaps[i] is not { } errorMap) continue;
            var id = batch.Images[i].Id;
            try
            {
                var reserved = evidence.Reserve(id);
                batch.Evidence[i] = reserved.Paths;
                // The pixels live in a pooled buffer that is reused once the batch settles: the writer gets a copy.
                if (!evidence.Enqueue(reserved, batch.Shape, batch.Pixels(i).ToArray(), reconstruction, errorMap, batch.Alert(i)))
                {
                    batch.Evidence[i] = null;
                    metrics.StorageErrors.WithLabels("evidence").Inc();
                    if (_skipped.Count(out var since)) Log.EvidenceSkipped(logger, since, id, EvidenceStore.MaxQueued);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                metrics.StorageErrors.WithLabels("evidence").Inc();
                Log.SinkFailed(logger, "evidence", id, e.Message);
            }
        }
        return ValueTask.CompletedTask;
    }
}
