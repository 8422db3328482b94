using AnomalyMonitor.Core.Thresholds;

namespace AnomalyMonitor.Tests.Core;

public class StatisticsTests
{
    private static readonly double[] Sample = [0.012, 0.019, 0.015, 0.031, 0.022, 0.017, 0.044, 0.013, 0.020, 0.026];

    // Independent reference: the textbook definitions written out longhand.
    private static double Mean(double[] v) => v.Sum() / v.Length;
    private static double PopulationStd(double[] v) { double m = Mean(v); return Math.Sqrt(v.Select(x => (x - m) * (x - m)).Sum() / v.Length); }

    [Fact]
    public void Mean_and_sigma_match_the_definitions()
    {
        var (mean, std) = Statistics.MeanStd(Sample);
        Assert.Equal(Mean(Sample), mean, 12);
        Assert.Equal(PopulationStd(Sample), std, 12);
    }

    [Theory]
    [InlineData(0, 1.0)]
    [InlineData(50, 5.5)]
    [InlineData(99, 9.91)]
    [InlineData(100, 10.0)]
    [InlineData(25, 3.25)]
    public void Percentile_interpolates_linearly_like_numpy(double p, double expected)
    {
        double[] values = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
        Assert.Equal(expected, Statistics.Percentile(values, p), 10);
    }

    [Fact]
    public void Calibration_keeps_linear_and_log_statistics()
    {
        var stats = CalibrationStats.From(Sample.Select(v => (float)v).ToArray(), "validation");
        var floats = Sample.Select(v => (double)(float)v).ToArray();
        Assert.Equal(Mean(floats), stats.Mean, 9);
        Assert.Equal(PopulationStd(floats), stats.Std, 9);
        var logs = floats.Select(x => Math.Log(x)).ToArray();
        Assert.Equal(Mean(logs), stats.LogMean, 9);
        Assert.Equal(PopulationStd(logs), stats.LogStd, 9);
        Assert.Equal(floats.Max(), stats.Max, 9);
        var sorted = floats.Order().ToArray();
        Assert.Equal(sorted[4] + 0.5 * (sorted[5] - sorted[4]), stats.Percentile(50), 9);
    }

    [Fact]
    public void Mean_plus_k_sigma_flags_only_above_the_line()
    {
        var stats = CalibrationStats.From(Sample.Select(v => (float)v).ToArray(), "validation");
        var policy = new ThresholdPolicy { Kind = ThresholdKind.MeanKSigma, K = 3, Space = StatisticSpace.Linear };
        double line = stats.Mean + 3 * stats.Std;
        Assert.Equal(line, policy.UpperThreshold(stats), 12);
        Assert.False(policy.Judge(line * 0.999, stats).IsAnomaly);
        Assert.True(policy.Judge(line * 1.001, stats).IsAnomaly);
        Assert.False(policy.Judge(0, stats).IsAnomaly); // one-sided: a perfect reconstruction is normal
        Assert.Equal((0.05 - stats.Mean) / stats.Std, policy.Judge(0.05, stats).ZScore, 9);
    }

    [Fact]
    public void Log_space_threshold_is_exp_of_log_mean_plus_k_log_sigma()
    {
        var stats = CalibrationStats.From(Sample.Select(v => (float)v).ToArray(), "validation");
        var policy = new ThresholdPolicy { K = 3, Space = StatisticSpace.Log };
        double expected = Math.Exp(stats.LogMean + 3 * stats.LogStd);
        Assert.Equal(expected, policy.UpperThreshold(stats), 12);
        Assert.True(policy.Judge(expected * 1.01, stats).IsAnomaly);
        Assert.False(policy.Judge(expected * 0.99, stats).IsAnomaly);
    }

    [Fact]
    public void Two_sided_z_score_flags_unusually_low_errors_too()
    {
        var stats = CalibrationStats.From(Sample.Select(v => (float)v).ToArray(), "validation");
        var policy = ThresholdPolicy.Parse("zscore:k=2,linear");
        double low = stats.Mean - 2.5 * stats.Std, high = stats.Mean + 2.5 * stats.Std, mid = stats.Mean + 1.5 * stats.Std;
        Assert.True(policy.Judge(high, stats).IsAnomaly);
        Assert.True(policy.Judge(low, stats).IsAnomaly);
        Assert.False(policy.Judge(mid, stats).IsAnomaly);
    }

    [Fact]
    public void Percentile_threshold_uses_the_calibration_percentile()
    {
        var stats = CalibrationStats.From(Sample.Select(v => (float)v).ToArray(), "validation");
        var policy = ThresholdPolicy.Parse("percentile:p=90");
        var sorted = Sample.Select(v => (double)(float)v).Order().ToArray();
        double p90 = sorted[8] + 0.1 * (sorted[9] - sorted[8]);
        Assert.Equal(p90, policy.UpperThreshold(stats), 9);
        Assert.True(policy.Judge(p90 + 1e-6, stats).IsAnomaly);
        Assert.False(policy.Judge(p90 - 1e-6, stats).IsAnomaly);
    }

    [Theory]
    [InlineData("mean-ksigma:k=3,log")]
    [InlineData("zscore:k=2.5,linear")]
    [InlineData("percentile:p=99.5")]
    public void Threshold_rules_round_trip_through_text(string text) =>
        Assert.Equal(ThresholdPolicy.Parse(text), ThresholdPolicy.Parse(ThresholdPolicy.Parse(text).ToString()));

    [Theory]
    [InlineData("median")]
    [InlineData("mean-ksigma:k=-1")]
    [InlineData("percentile:p=120")]
    public void Bad_threshold_rules_are_refused(string text) =>
        Assert.Throws<FormatException>(() => ThresholdPolicy.Parse(text));
}
