using AnomalyMonitor.Core.Data;
using AnomalyMonitor.Core.Storage;
using AnomalyMonitor.Core.Thresholds;

namespace AnomalyMonitor.Core.Evaluation;

/// <summary>Each image's error and verdict, and the metrics when labels say which images are normal.</summary>
public sealed record EvaluationReport(
    double Threshold, ThresholdPolicy Policy, float[] Errors, Judgement[] Judgements, bool[]? IsAnomaly, BinaryMetrics? Metrics)
{
    public int Total => Errors.Length;
    public int Flagged => Judgements.Count(j => j.IsAnomaly);
}

public static class Evaluator
{
    /// <summary>
    /// Scores <paramref name="images"/> and judges them with the model's calibration. With a normal
    /// label, every other label counts as an anomaly and the metrics are computed.
    /// </summary>
    public static EvaluationReport Run(LoadedModel model, ImageSet images, int? normalLabel, ThresholdPolicy? policy = null, int batchSize = 64,
        CancellationToken cancellationToken = default)
    {
        policy ??= model.Threshold;
        var errors = model.CreateScorer().Score(images, batchSize, cancellationToken);
        var calibration = model.Manifest.Calibration;
        var judgements = errors.Select(e => policy.Judge(e, calibration)).ToArray();
        bool[]? isAnomaly = null;
        BinaryMetrics? metrics = null;
        if (normalLabel is { } normal && images.Labels.Any(l => l != ImageSet.NoLabel))
        {
            isAnomaly = images.Labels.Select(l => l != normal).ToArray();
            metrics = BinaryMetrics.Compute(errors.Select(e => (double)e).ToArray(), isAnomaly, judgements.Select(j => j.IsAnomaly).ToArray());
        }
        return new EvaluationReport(policy.UpperThreshold(calibration), policy, errors, judgements, isAnomaly, metrics);
    }
}
