using AnomalyMonitor.Core.Evaluation;
using AnomalyMonitor.Core.Thresholds;
using static AnomalyMonitor.Tests.Support.Draws;

namespace AnomalyMonitor.Tests.Core;

public class ReplayTests
{
    private static EvaluationReport Report(CalibrationStats calibration, ThresholdPolicy policy, IReadOnlyList<(double Score, bool Anomaly)> stream)
    {
        var errors = stream.Select(s => (float)s.Score).ToArray();
        var judgements = errors.Select(e => policy.Judge(e, calibration)).ToArray();
        return new EvaluationReport(policy.UpperThreshold(calibration), policy, errors, judgements, [.. stream.Select(s => s.Anomaly)], null);
    }

    [Fact]
    public void Fewer_normals_than_the_window_needs_are_judged_as_evaluate_judges_them()
    {
        var rng = new Random(3);
        var calibration = LogNormalCalibration(rng, 1000);
        var policy = ThresholdPolicy.Parse("mean-ksigma:k=2,log");
        var stream = Enumerable.Range(0, 150).Select(i => i % 3 == 0 ? (Math.Exp(-4 + 5 * 0.5), true) : (LogNormal(rng), false)).ToList();
        var report = Report(calibration, policy, stream);
        var replayed = Replay.Run(report, calibration, new JudgeSettings());
        Assert.Equal(0, replayed.WindowCount); // under MinWindow (200) accepted: the calibration judges throughout
        Assert.Equal(report.Flagged, replayed.Flagged);
        Assert.Equal(50, replayed.AnomaliesFlagged);
        Assert.Equal(100, replayed.Normals);
    }

    /// <summary>A clean stretch of normals first, as a test split's cleaner writers come first: the order matters to the service's judge.</summary>
    [Fact]
    public void A_clean_stretch_first_makes_the_window_alone_flag_more_of_the_rest_than_evaluate()
    {
        var rng = new Random(4);
        var calibration = LogNormalCalibration(rng, 1000);
        var policy = ThresholdPolicy.Parse("mean-ksigma:k=2,log");
        var stream = CleanThenOrdinary(rng).Concat(Enumerable.Range(0, 100).Select(_ => (Math.Exp(-4 + 5 * 0.5), true))).ToList();
        var report = Report(calibration, policy, stream);
        int fixedFlags = report.Judgements.Take(1600).Count(j => j.IsAnomaly);
        var alone = Replay.Run(report, calibration, new JudgeSettings { CalibrationWeight = 0, Floor = false });
        var pooled = Replay.Run(report, calibration, new JudgeSettings { Floor = false });
        // This seed: evaluate flags 26 of the 1,600 normals, the window alone 50, pooled with the calibration 35.
        Assert.True(alone.NormalsFlagged > 1.5 * fixedFlags, $"window alone {alone.NormalsFlagged}, evaluate {fixedFlags}");
        Assert.True(pooled.NormalsFlagged - fixedFlags < 0.6 * (alone.NormalsFlagged - fixedFlags), $"pooled {pooled.NormalsFlagged}, alone {alone.NormalsFlagged}, evaluate {fixedFlags}");
        Assert.Equal(100, pooled.AnomaliesFlagged);
        Assert.True(pooled.WindowCount > 0);
    }

    /// <summary>
    /// Judge:Floor (the default): the same clean-then-ordinary stream, judged with the calibration's threshold as a
    /// floor, flags only what `evaluate` flags; a rough stretch still raises the threshold.
    /// </summary>
    [Fact]
    public void With_the_floor_a_clean_stretch_flags_nothing_evaluate_would_not_and_a_rough_one_still_raises_it()
    {
        var rng = new Random(4);
        var calibration = LogNormalCalibration(rng, 1000);
        var policy = ThresholdPolicy.Parse("mean-ksigma:k=2,log");
        var clean = CleanThenOrdinary(rng);
        var report = Report(calibration, policy, clean);
        var floored = Replay.Run(report, calibration, new JudgeSettings());
        var free = Replay.Run(report, calibration, new JudgeSettings { Floor = false });
        Assert.True(floored.WindowCount > 0);
        Assert.True(floored.NormalsFlagged <= report.Flagged, $"floored {floored.NormalsFlagged}, evaluate {report.Flagged}");
        Assert.True(free.NormalsFlagged > floored.NormalsFlagged, $"free {free.NormalsFlagged}, floored {floored.NormalsFlagged}: the stream was meant to pull a free window down");
        Assert.Equal(policy.UpperThreshold(calibration), floored.FinalThreshold, 9);

        // A stream rougher than the calibration (σ 0.7 against 0.5) still lifts the threshold above it.
        var rough = Enumerable.Range(0, 1500).Select(_ => (LogNormal(rng, 0.7), false)).ToList();
        var lifted = Replay.Run(Report(calibration, policy, rough), calibration, new JudgeSettings());
        Assert.True(lifted.FinalThreshold > policy.UpperThreshold(calibration) * 1.05, $"threshold {lifted.FinalThreshold} vs calibration {policy.UpperThreshold(calibration)}");
    }

    /// <summary>600 normals narrower than the calibration (log-σ 0.3), then 1,000 ordinary ones: a test split's cleaner writers first.</summary>
    private static List<(double Score, bool Anomaly)> CleanThenOrdinary(Random rng) =>
        [.. Enumerable.Range(0, 600).Select(_ => (LogNormal(rng, 0.3), false)), .. Enumerable.Range(0, 1000).Select(_ => (LogNormal(rng), false))];
}
