using AnomalyMonitor.Core.Thresholds;
using static AnomalyMonitor.Tests.Support.Draws;

namespace AnomalyMonitor.Tests.Core;

public class RollingJudgeTests
{
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
        var calibration = LogNormalCalibration(rng, 5000);
        var judge = new RollingJudge(new JudgeSettings { K = 3, Window = window, MinWindow = window, TruncationCorrection = correction }, calibration);
        double Rate(int n)
        {
            int flagged = 0;
            for (int i = 0; i < n; i++) if (judge.Judge(LogNormal(rng)).IsAnomaly) flagged++;
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
        var judge = new RollingJudge(new JudgeSettings { Space = StatisticSpace.Linear, MinWindow = 3, Window = 10, TruncationCorrection = false, CalibrationWeight = 0, Floor = false }, calibration);
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
    public void The_calibration_and_the_window_pool_like_one_sample_of_both()
    {
        float[] held = [0.010f, 0.012f, 0.011f, 0.013f, 0.009f];
        var calibration = CalibrationStats.From(held, "validation");
        var judge = new RollingJudge(new JudgeSettings { Space = StatisticSpace.Linear, MinWindow = 3, Window = 10, TruncationCorrection = false, Guard = 0, Floor = false }, calibration);
        double[] window = [0.0100, 0.0105, 0.0095];
        foreach (var w in window) judge.Judge(w);
        Assert.True(judge.UsingWindow);
        // Weight 1: each held-out score counts as one window score, so the statistics are those of all eight.
        var (mean, std) = Statistics.MeanStd([.. held.Select(h => (double)h), .. window]);
        Assert.Equal(mean, judge.Statistics().Mean, 12);
        Assert.Equal(std, judge.Statistics().Std, 12);
        Assert.Equal(mean + 3 * std, judge.Threshold, 12);
    }

    /// <summary>
    /// Normals in the order a test split comes in: a clean stretch first (σ 0.6 of the calibration's). A window
    /// of that stretch alone sets the threshold far down, and the normals after it pay in false alarms; pooled
    /// with the 1,000 held-out scores, the threshold moves only part of the way.
    /// </summary>
    [Fact]
    public void A_clean_stretch_of_normals_moves_the_pooled_threshold_only_as_far_as_its_evidence()
    {
        double LogThresholdAfterCleanStretch(double weight, out double calibrationThreshold)
        {
            var rng = new Random(5);
            var calibration = LogNormalCalibration(rng, 1000);
            var judge = new RollingJudge(new JudgeSettings { K = 2, Window = 5000, MinWindow = 200, CalibrationWeight = weight, Floor = false }, calibration);
            calibrationThreshold = Math.Log(judge.Threshold);
            for (int i = 0; i < 600; i++) judge.Judge(LogNormal(rng, 0.3));
            Assert.True(judge.UsingWindow);
            return Math.Log(judge.Threshold);
        }
        // In log space (this seed): calibration -2.97; the window alone -3.24, 0.27 below; pooled (1,000 held-out
        // against about 500 accepted) -3.03, a fifth of that way.
        double alone = LogThresholdAfterCleanStretch(0, out double calibration);
        double pooled = LogThresholdAfterCleanStretch(1, out _);
        Assert.True(calibration - alone > 0.15, $"the window alone moved the log-threshold from {calibration:F3} to {alone:F3}");
        Assert.True(calibration - pooled < 0.5 * (calibration - alone), $"pooled: {pooled:F3}, alone: {alone:F3}, calibration: {calibration:F3}");
        Assert.True(pooled < calibration, $"pooled: {pooled:F3} should still move towards the stretch from {calibration:F3}");
    }

    [Fact]
    public void Anomalies_never_enter_the_window_and_only_low_scores_are_accepted()
    {
        var calibration = CalibrationStats.From(Enumerable.Range(0, 100).Select(i => 0.01f + i * 0.0001f).ToArray(), "validation");
        var judge = new RollingJudge(new JudgeSettings { Space = StatisticSpace.Linear, Accept = 1, MinWindow = 1000, Window = 1000, Guard = 0 }, calibration);
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
        var settings = new JudgeSettings { Guard = 0 };
        var judge = new RollingJudge(settings, calibration);
        for (int i = 0; i < 50; i++) judge.Judge(0.011 + i * 1e-5);
        Assert.True(judge.WindowCount > 0);
        var state = judge.Save("sha256:aa");
        var again = new RollingJudge(settings, calibration);
        Assert.False(again.Restore(state, "sha256:bb"));
        Assert.True(again.Restore(state, "sha256:aa"));
        Assert.Equal(judge.Threshold, again.Threshold, 12);
    }

    /// <summary>
    /// The test split as a stream: 10% normals, 90% anomalies of which half sit just inside the accept cut
    /// (z in [0, 1)), where nothing can tell them from normals one at a time. Only their share gives them away.
    /// </summary>
    [Theory]
    [InlineData(3.0)]
    [InlineData(0.0)]
    public void A_stream_mostly_of_anomalies_does_not_teach_the_window_and_normals_release_it(double guard)
    {
        var rng = new Random(7);
        var calibration = LogNormalCalibration(rng, 2000);
        // The window alone: pooled with the calibration, the climb without the guard would be diluted, not gone.
        var judge = new RollingJudge(new JudgeSettings { K = 3, Window = 1000, MinWindow = 200, Guard = guard, CalibrationWeight = 0, Floor = false }, calibration);
        double Normal() => LogNormal(rng);
        for (int i = 0; i < 5000; i++)
        {
            double score = (i % 10) switch
            {
                0 => Normal(),
                < 5 => Math.Exp(calibration.LogMean + calibration.LogStd * rng.NextDouble()),
                _ => Math.Exp(calibration.LogMean + 10 * calibration.LogStd),
            };
            judge.Judge(score);
        }
        var (mean, std) = judge.Statistics();
        if (guard > 0)
        {
            Assert.True(judge.Held);
            Assert.Equal(0, judge.WindowCount); // every block refused: the band holds over half of each, not a quarter
            Assert.True(judge.LastBandShare > 0.45, $"band share {judge.LastBandShare}");
            Assert.Equal(calibration.LogMean, mean, 12); // still the calibration's: the threshold `evaluate` uses
            Assert.Equal(calibration.LogStd, std, 12);
            Assert.False(judge.Judge(calibration.Mean).Accepted); // nor does the store take anything meanwhile
        }
        else
        {
            // Without the guard the window fills with the near-cut anomalies and its mean climbs well above the calibration's.
            Assert.True(mean > calibration.LogMean + 0.3 * calibration.LogStd, $"mean {mean} vs calibration {calibration.LogMean} ± {calibration.LogStd}");
        }

        for (int i = 0; i < 400; i++) judge.Judge(Normal());
        Assert.False(judge.Held);
        Assert.True(judge.WindowCount >= 200);
    }

    [Fact]
    public void A_stream_of_normals_is_almost_never_held()
    {
        var rng = new Random(11);
        var calibration = LogNormalCalibration(rng, 2000);
        var judge = new RollingJudge(new JudgeSettings { K = 3, Window = 5000, MinWindow = 200 }, calibration);
        for (int i = 0; i < 20_000; i++) judge.Judge(LogNormal(rng));
        // About 84 blocks of 200; a 3σ test refuses about one normal block in 700.
        Assert.True(judge.BlocksLearned >= 80, $"{judge.BlocksLearned} blocks learned");
        Assert.True(judge.BlocksRefused <= 2, $"{judge.BlocksRefused} normal blocks refused");
        Assert.Equal(5000, judge.WindowCount);
    }

    [Fact]
    public void Items_the_model_trained_on_are_judged_but_never_learned_from()
    {
        var calibration = LogNormalCalibration(new Random(3), 2000);
        var judge = new RollingJudge(new JudgeSettings { MinWindow = 10, Window = 100 }, calibration);
        for (int i = 0; i < 50; i++)
        {
            var verdict = judge.Judge(calibration.Min, learn: false);
            Assert.False(verdict.IsAnomaly);
        }
        Assert.Equal(0, judge.WindowCount);
        Assert.True(double.IsNaN(judge.LastBandShare)); // nor do they count toward the guard
        for (int i = 0; i < 10; i++) judge.Judge(Math.Exp(calibration.LogMean)); // one block of 10, at z = 0: below the band
        Assert.Equal(10, judge.WindowCount);
    }

    [Theory]
    [InlineData(1.0, false)]
    [InlineData(1.0, true)]
    [InlineData(4.0, false)]
    public void The_band_holds_a_quarter_of_the_accepted_normals(double accept, bool twoSided)
    {
        double b = RollingJudge.GaussianBandStart(accept, twoSided);
        double inside = twoSided ? 2 * RollingJudge.NormalCdf(accept) - 1 : RollingJudge.NormalCdf(accept);
        double band = twoSided ? 2 * (RollingJudge.NormalCdf(accept) - RollingJudge.NormalCdf(b)) : RollingJudge.NormalCdf(accept) - RollingJudge.NormalCdf(b);
        Assert.Equal(RollingJudge.BandShare, band / inside, 6);
        // Measured on a sample, the empirical band agrees with the formula.
        var rng = new Random(5);
        var values = Enumerable.Range(0, 50_000).Select(_ => Gaussian(rng)).ToArray();
        Assert.Equal(b, RollingJudge.BandStart(values, accept, twoSided), 1);
    }

    /// <summary>The two-sided rule with the floor: a narrow window widens nothing away; the band spans the calibration's.</summary>
    [Fact]
    public void With_the_floor_the_two_sided_band_never_narrows_below_the_calibration()
    {
        var rng = new Random(9);
        var calibration = LogNormalCalibration(rng, 1000);
        var judge = new RollingJudge(new JudgeSettings { K = 3, TwoSided = true, Window = 2000, MinWindow = 200 }, calibration);
        for (int i = 0; i < 1500; i++) judge.Judge(LogNormal(rng, 0.2)); // far narrower than the calibration's 0.5
        Assert.True(judge.UsingWindow);
        var (mean, std) = judge.Statistics();
        Assert.True(mean - (3 * std) <= calibration.LogMean - (3 * calibration.LogStd) + 1e-12, "the band's low side moved in");
        Assert.True(mean + (3 * std) >= calibration.LogMean + (3 * calibration.LogStd) - 1e-12, "the band's high side moved in");
        // A score the calibration's band holds is never an anomaly.
        Assert.False(judge.Judge(Math.Exp(calibration.LogMean + (2.9 * calibration.LogStd))).IsAnomaly);
        Assert.False(judge.Judge(Math.Exp(calibration.LogMean - (2.9 * calibration.LogStd))).IsAnomaly);
    }
}
