using AnomalyMonitor.Pipeline;
using AnomalyMonitor.Sinks;

namespace AnomalyMonitor.Telemetry;

/// <summary>Counts each verdict by source and outcome and records its score in the error histogram.</summary>
internal sealed class MetricsSink(MonitorMetrics metrics) : IVerdictSink
{
    public bool Durable => false;

    public ValueTask WriteAsync(JudgedBatch batch, CancellationToken cancellationToken)
    {
        for (int i = 0; i < batch.Count; i++)
        {
            var v = batch.Verdicts[i];
            metrics.Scores.Observe(v.Judgement.Score);
            if (float.IsFinite(batch.ReconstructionErrors[i])) metrics.Errors.Observe(batch.ReconstructionErrors[i]);
            metrics.CountItem(batch.Images[i].Source, v.IsAnomaly ? "anomaly" : "normal");
        }
        return ValueTask.CompletedTask;
    }
}
