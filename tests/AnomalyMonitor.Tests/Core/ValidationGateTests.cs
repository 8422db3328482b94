using AnomalyMonitor.Core.Evaluation;

namespace AnomalyMonitor.Tests.Core;

public sealed class ValidationGateTests
{
    private static readonly GateSettings Settings = new(Tolerance: 0.05, AurocTolerance: 0.01, MinConfirmedAnomalies: 3);
    private static float[] Errors(double level, int n = 50) => [.. Enumerable.Range(0, n).Select(i => (float)(level * (1 + 0.1 * Math.Sin(i))))];

    [Fact]
    public void A_candidate_with_lower_error_is_promoted_and_one_beyond_the_tolerance_is_rejected()
    {
        var better = ValidationGate.Decide(Errors(0.010), Errors(0.012), [], null, Settings);
        Assert.True(better.Promoted, better.Reason);
        Assert.Equal(0.010 / 0.012, better.Ratio!.Value, 3);

        var within = ValidationGate.Decide(Errors(0.0104), Errors(0.010), [], null, Settings);
        Assert.True(within.Promoted, "4% worse is inside a 5% tolerance");

        var worse = ValidationGate.Decide(Errors(0.0110), Errors(0.010), [], null, Settings);
        Assert.False(worse.Promoted);
        Assert.Contains("1.100x", worse.Reason);
    }

    [Fact]
    public void Non_finite_errors_are_rejected_whatever_the_mean_says()
    {
        var errors = Errors(0.001);
        errors[7] = float.NaN;
        var report = ValidationGate.Decide(errors, Errors(0.01), [], null, Settings);
        Assert.False(report.Promoted);
        Assert.Contains("NaN", report.Reason);
        Assert.False(ValidationGate.Decide([float.PositiveInfinity], Errors(0.01), [], null, Settings).Promoted);
    }

    [Fact]
    public void With_enough_confirmed_anomalies_a_candidate_that_separates_them_worse_is_rejected()
    {
        // The candidate has a lower normal error but scores the confirmed anomalies like normals.
        var candidateNormal = Errors(0.008);
        float[] candidateAnomalies = [0.008f, 0.0085f, 0.0079f, 0.02f];
        var currentNormal = Errors(0.010);
        float[] currentAnomalies = [0.05f, 0.06f, 0.07f, 0.08f];
        var report = ValidationGate.Decide(candidateNormal, currentNormal, candidateAnomalies, currentAnomalies, Settings);
        Assert.False(report.Promoted);
        Assert.Equal(1.0, report.CurrentAuroc!.Value, 6);
        Assert.True(report.CandidateAuroc < 0.9);
        Assert.Contains("AUROC", report.Reason);

        // Below MinConfirmedAnomalies the AUROC rule does not apply (too few to mean anything).
        var few = ValidationGate.Decide(candidateNormal, currentNormal, candidateAnomalies[..2], currentAnomalies[..2], Settings);
        Assert.True(few.Promoted, few.Reason);
        Assert.Null(few.CandidateAuroc);
    }
}
