using AnomalyMonitor.Core.Thresholds;
using static AnomalyMonitor.Tests.Support.Draws;

namespace AnomalyMonitor.Tests.Core;

/// <summary>The check training prints: how many of its own held-out normals a rule flags, and why.</summary>
public class CalibrationCheckTests
{
    /// <summary>An exponential variable: skew 2, and mean + 3σ (= 4) is passed by e⁻⁴ = 1.8% of it, against 0.13% of a Gaussian.</summary>
    private static double Exponential(Random rng) => -Math.Log(1 - rng.NextDouble());

    private static CalibrationStats Calibration(int seed, Func<Random, double> logScore)
    {
        var rng = new Random(seed);
        return CalibrationStats.From([.. Enumerable.Range(0, 20_000).Select(_ => (float)Math.Exp(-4 + (0.3 * logScore(rng))))], "validation");
    }

    [Fact]
    public void Log_normal_scores_pass_the_k_sigma_rule_quietly()
    {
        var check = CalibrationCheck.Of(ThresholdPolicy.Default, Calibration(1, Gaussian))!;
        // 0.13% expected: 27 of 20,000, σ ≈ 5; the warning starts at 200.
        Assert.InRange(check.FlaggedShare, 0.0003, 0.0030);
        Assert.InRange(check.Skew, -0.1, 0.1);
        Assert.Null(check.Warning);
    }

    [Fact]
    public void Right_skewed_log_scores_are_called_out_with_the_rate_and_a_calibrated_rule()
    {
        var check = CalibrationCheck.Of(ThresholdPolicy.Default, Calibration(2, Exponential))!;
        // 1.8% expected: 366 of 20,000, σ ≈ 19; the warning starts at 200.
        Assert.InRange(check.FlaggedShare, 0.014, 0.023);
        Assert.InRange(check.Skew, 1.7, 2.3);
        Assert.NotNull(check.Warning);
        Assert.Contains("held-out normals it was calibrated on", check.Warning);
        Assert.Contains("conformal:alpha=0.01", check.Warning);
    }

    [Fact]
    public void A_rule_that_promises_its_rate_is_not_called_out()
    {
        var check = CalibrationCheck.Of(ThresholdPolicy.Parse("conformal:alpha=0.01"), Calibration(3, Exponential))!;
        Assert.InRange(check.FlaggedShare, 0.005, 0.015);
        Assert.Null(check.Warning);
    }

    [Fact]
    public void A_manifest_without_stored_scores_has_no_check()
    {
        var stats = Calibration(4, Gaussian) with { Scores = null };
        Assert.Null(CalibrationCheck.Of(ThresholdPolicy.Default, stats));
    }
}
