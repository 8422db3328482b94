using AnomalyMonitor.Core.Thresholds;

namespace AnomalyMonitor.Tests.Core;

public class RollingJudgeTests
{
    private static double Gaussian(Random rng) => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());

    /// <summary>
    /// A stationary stream of log-normal scores (no model), fed through 100 window turnovers: the judge
    /// only adds what it judges normal, so without a correction the threshold would creep down.
    /// </summary>
    [Theory]
    [InlineData(true, 1.5)]
    [InlineData(false, 2.5)]
    public void False_alarm_rate_stays_near_its_start_over_100_window_turnovers(bool correction, double bound)
    {
        const int window = 2000;
        // Bound: with the correction the rate must stay within ×1.5 of where it started (and of nominal);
        // without it, the known downward creep of σ is allowed up to ×2.5 over 100 turnovers.
        var rng = new Random(42);
        var calibration = CalibrationStats.From(Enumerable.Range(0, 5000).Select(_ => (float)Math.Exp(-4 + 0.5 * Gaussian(rng))).ToArray(), "validation");
        var judge = new RollingJudge(new JudgeSettings { K = 3, Window = window, MinWindow = window, TruncationCorrection = correction }, calibration);
        double Rate(int n)
        {
            int flagged = 0;
            for (int i = 0; i < n; i++) if (judge.Judge(Math.Exp(-4 + 0.5 * Gaussian(rng))).IsAnomaly) flagged++;
            return (double)flagged / n;
        }
        Rate(window);                           // the first fill, judged by the calibration
        double start = Rate(40 * window);       // turnovers 2-41: about 100 false alarms expected, so ±10% noise
        Rate(19 * window);
        double end = Rate(40 * window);         // turnovers 61-100
        double nominal = 1 - RollingJudge.NormalCdf(3);
        Assert.InRange(start, nominal / 2, nominal * 2);
        Assert.True(end <= start * bound, $"false-alarm rate rose from {start:P3} to {end:P3} (bound ×{bound}, correction {correction})");
        if (correction) Assert.InRange(end, nominal / 2, nominal * 2);
    }

    [Fact]
    public void Uses_calibration_until_the_window_is_full_enough_then_the_window()
    {
        var calibration = CalibrationStats.From([0.010f, 0.012f, 0.011f, 0.013f, 0.009f], "validation");
        var judge = new RollingJudge(new JudgeSettings { Space = StatisticSpace.Linear, MinWindow = 3, Window = 10, TruncationCorrection = false }, calibration);
        Assert.Equal(calibration.Mean + 3 * calibration.Std, judge.Threshold, 12);
        Assert.False(judge.Judge(0.011).FromWindow);
        judge.Judge(0.012);
        judge.Judge(0.010);
        Assert.True(judge.UsingWindow);
        double[] window = [0.011, 0.012, 0.010];
        double mean = window.Average(), std = Math.Sqrt(window.Select(x => (x - mean) * (x - mean)).Average());
        Assert.Equal(mean + 3 * std, judge.Threshold, 12);
    }

    [Fact]
    public void Anomalies_never_enter_the_window_and_only_low_scores_are_accepted()
    {
        var calibration = CalibrationStats.From(Enumerable.Range(0, 100).Select(i => 0.01f + i * 0.0001f).ToArray(), "validation");
        var judge = new RollingJudge(new JudgeSettings { Space = StatisticSpace.Linear, Accept = 1, MinWindow = 1000, Window = 1000 }, calibration);
        var anomaly = judge.Judge(1.0);
        Assert.True(anomaly.IsAnomaly);
        Assert.False(anomaly.Accepted);
        Assert.Equal(0, judge.WindowCount);
        var nearMean = judge.Judge(calibration.Mean);
        Assert.True(nearMean.Accepted);
        var between = judge.Judge(calibration.Mean + 2 * calibration.Std);
        Assert.False(between.IsAnomaly);
        Assert.False(between.Accepted); // normal, but above mean + 1σ: judged, not learned from, by the store or the window
        Assert.Equal(1, judge.WindowCount);
    }

    [Fact]
    public void Truncation_correction_matches_the_truncated_normal_moments()
    {
        // Sample a normal truncated at +3: the corrected statistics recover μ=0, σ=1.
        var rng = new Random(9);
        var kept = new List<double>();
        while (kept.Count < 400_000) { double x = Gaussian(rng); if (x < 3) kept.Add(x); }
        double m = kept.Average(), s = Math.Sqrt(kept.Select(x => (x - m) * (x - m)).Average());
        var (factor, shift) = RollingJudge.TruncationCorrection(3, twoSided: false);
        Assert.Equal(1.0, s * factor, 2);
        Assert.Equal(0.0, m + shift * s * factor, 2);
    }

    [Fact]
    public void State_saves_and_restores_only_for_the_same_model()
    {
        var calibration = CalibrationStats.From([0.010f, 0.012f, 0.011f], "validation");
        var judge = new RollingJudge(new JudgeSettings(), calibration);
        for (int i = 0; i < 50; i++) judge.Judge(0.011 + i * 1e-5);
        var state = judge.Save("sha256:aa");
        var again = new RollingJudge(new JudgeSettings(), calibration);
        Assert.False(again.Restore(state, "sha256:bb"));
        Assert.True(again.Restore(state, "sha256:aa"));
        Assert.Equal(judge.Threshold, again.Threshold, 12);
    }
}
