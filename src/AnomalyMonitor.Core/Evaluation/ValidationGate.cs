namespace AnomalyMonitor.Core.Evaluation;

public sealed record GateSettings(double Tolerance = 0.05, double AurocTolerance = 0.01, int MinConfirmedAnomalies = 5);

/// <summary>The gate's decision with every number it used; kept in the candidate's manifest and shown by `models list`.</summary>
public sealed record GateReport
{
    public required string Decision { get; init; }
    public required string Reason { get; init; }
    public int Holdout { get; init; }
    public double CandidateMeanError { get; init; }
    public double? CurrentMeanError { get; init; }
    /// <summary>Candidate mean error / current mean error; promotion needs ≤ 1 + Tolerance.</summary>
    public double? Ratio { get; init; }
    public double Tolerance { get; init; }
    public int ConfirmedAnomalies { get; init; }
    public double? CandidateAuroc { get; init; }
    public double? CurrentAuroc { get; init; }
    public double AurocTolerance { get; init; }

    public bool Promoted => Decision == ValidationGate.Promote;
}

/// <summary>
/// Decides whether a retrained candidate may replace the current model. Both are scored on the same
/// held-out normals (and, when operators confirmed enough anomalies, on those too); the candidate must
/// not be worse beyond the tolerances, and any non-finite number rejects it.
/// </summary>
public static class ValidationGate
{
    public const string Promote = "promote";
    public const string Reject = "reject";

    /// <summary>
    /// The part of a score that means the same for two models, for the held-out comparison: the
    /// reconstruction error, or for a latent (or combined) score the latent part, d²/dimensions, which is
    /// about 1 for the normals of a model that generalises. The combined score itself is standardised on
    /// each model's own held-out images, so it would call any two models equal.
    /// </summary>
    public static float[] Comparable(Scoring.ScoreOutput output, Scoring.ScoreKind kind) =>
        kind == Scoring.ScoreKind.Reconstruction ? output.ReconstructionErrors : output.LatentScores;

    /// <param name="candidateNormal">The held-out normals' comparable part of the candidate's score (see <see cref="Comparable"/>).</param>
    /// <param name="currentNormal">Null when there is no current model to beat.</param>
    /// <param name="candidateRanking">The candidate's own scores of the held-out normals, for the AUROC against confirmed anomalies (default: candidateNormal).</param>
    public static GateReport Decide(IReadOnlyList<float> candidateNormal, IReadOnlyList<float>? currentNormal,
        IReadOnlyList<float> candidateAnomalies, IReadOnlyList<float>? currentAnomalies, GateSettings settings,
        IReadOnlyList<float>? candidateRanking = null, IReadOnlyList<float>? currentRanking = null)
    {
        candidateRanking ??= candidateNormal;
        currentRanking ??= currentNormal;
        ArgumentOutOfRangeException.ThrowIfZero(candidateNormal.Count);
        double candidateMean = candidateNormal.Average(e => (double)e);
        double? currentMean = currentNormal is { Count: > 0 } ? currentNormal.Average(e => (double)e) : null;
        var report = new GateReport
        {
            Decision = Reject,
            Reason = "",
            Holdout = candidateNormal.Count,
            CandidateMeanError = candidateMean,
            CurrentMeanError = currentMean,
            Ratio = currentMean is > 0 ? candidateMean / currentMean : null,
            Tolerance = settings.Tolerance,
            ConfirmedAnomalies = candidateAnomalies.Count,
            AurocTolerance = settings.AurocTolerance,
        };

        if (!double.IsFinite(candidateMean) || candidateNormal.Any(e => !float.IsFinite(e)) || candidateRanking.Any(e => !float.IsFinite(e)))
            return report with { Reason = "the candidate's held-out errors are not finite (NaN or infinite)" };

        if (candidateAnomalies.Count >= settings.MinConfirmedAnomalies && currentAnomalies is not null)
        {
            double candidateAuroc = Auroc(candidateRanking, candidateAnomalies);
            double currentAuroc = currentRanking is null ? double.NaN : Auroc(currentRanking, currentAnomalies);
            report = report with { CandidateAuroc = candidateAuroc, CurrentAuroc = double.IsNaN(currentAuroc) ? null : currentAuroc };
            if (!double.IsFinite(candidateAuroc))
                return report with { Reason = "the candidate's AUROC on confirmed anomalies is not finite" };
            if (double.IsFinite(currentAuroc) && candidateAuroc < currentAuroc - settings.AurocTolerance)
                return report with { Reason = $"AUROC on {candidateAnomalies.Count} confirmed anomalies fell from {currentAuroc:F4} to {candidateAuroc:F4} (tolerance {settings.AurocTolerance})" };
        }

        if (currentMean is null)
            return report with { Decision = Promote, Reason = "no current model to compare with" };
        if (candidateMean > (1 + settings.Tolerance) * currentMean)
            return report with { Reason = $"mean held-out error {candidateMean:G4} is {report.Ratio:F3}x the current model's {currentMean:G4} (allowed {1 + settings.Tolerance:F3}x)" };
        return report with { Decision = Promote, Reason = $"mean held-out error {candidateMean:G4} vs {currentMean:G4} ({report.Ratio:F3}x, allowed {1 + settings.Tolerance:F3}x)" };
    }

    private static double Auroc(IReadOnlyList<float> normal, IReadOnlyList<float> anomalies)
    {
        var scores = normal.Concat(anomalies).Select(e => (double)e).ToList();
        var labels = Enumerable.Repeat(false, normal.Count).Concat(Enumerable.Repeat(true, anomalies.Count)).ToList();
        return BinaryMetrics.AreaUnderRoc(scores, labels);
    }
}
