using AnomalyMonitor.Pipeline;
using AnomalyMonitor.Sinks;
using AnomalyMonitor.Telemetry;
using Microsoft.Extensions.Logging;

namespace AnomalyMonitor.Evidence;

/// <summary>
/// Writes each anomaly's evidence (original, reconstruction, heatmap, record) before the alert sink runs,
/// so that the alert can name the files. Not durable: evidence that cannot be written is counted and
/// logged, and the verdict and its alert go on without it.
/// </summary>
internal sealed class EvidenceSink(EvidenceStore evidence, MonitorMetrics metrics, ILogger<EvidenceSink> logger) : IVerdictSink
{
    public bool Durable => false;

    public ValueTask WriteAsync(JudgedBatch batch, CancellationToken cancellationToken)
    {
        for (int i = 0; i < batch.Count; i++)
        {
            if (!batch.Verdicts[i].IsAnomaly) continue;
            var id = batch.Images[i].Id;
            try
            {
                batch.Evidence[i] = evidence.Write(id, batch.Shape, batch.Pixels(i),
                    batch.Reconstructions[i], batch.ErrorMaps[i], batch.Alert(i));
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
