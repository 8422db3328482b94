using System.Globalization;

namespace AnomalyMonitor.Core.Thresholds;

/// <summary>
/// How a rule treats the held-out normals it was calibrated on. A k-σ rule assumes the scores are Gaussian in
/// its space; the latent score's logs are right-skewed (0.6–1.9 on MNIST digits), so mean + 3σ flags 1–2% of
/// normals where a Gaussian would give 0.13%. That shows on the calibration itself, before any new image, so
/// training says so instead of leaving it for the operator to find in the false alarms.
/// </summary>
public sealed record CalibrationCheck(double FlaggedShare, double Skew, int Count, string? Warning)
{
    /// <summary>The share of normals above which a k-σ rule is called out: the product's false-alarm target.</summary>
    public const double WarnShare = 0.01;

    /// <summary>Null when the manifest predates stored calibration scores.</summary>
    public static CalibrationCheck? Of(ThresholdPolicy policy, CalibrationStats stats)
    {
        if (stats.Scores is not { Length: > 2 } scores) return null;
        bool log = policy.Space == StatisticSpace.Log;
        double m = log ? stats.LogMean : stats.Mean, sd = log ? stats.LogStd : stats.Std;
        double fixedThreshold = policy.UsesScores ? policy.FixedThreshold(stats) : double.NaN;
        int flagged = scores.Count(s => policy.Judge(s, m, sd, fixedThreshold).IsAnomaly);
        var x = scores.Select(s => policy.ToSpace(s)).ToArray();
        var (mean, std) = Statistics.MeanStd(x);
        double skew = std > 0 ? x.Average(v => Math.Pow((v - mean) / std, 3)) : 0;
        double share = (double)flagged / scores.Length;
        string? warning = null;
        if (!policy.UsesScores && share > WarnShare)
        {
            var inv = CultureInfo.InvariantCulture;
            warning = $"{policy} flags {(100 * share).ToString("0.0", inv)}% of the {scores.Length} held-out normals it was calibrated on " +
                $"(their {(policy.Space == StatisticSpace.Log ? "log-" : "")}scores are skewed {skew.ToString("0.00", inv)}; a Gaussian is 0): expect about that rate of false alarms. " +
                $"For a promised rate use --threshold conformal:alpha=0.01 (at least {ThresholdPolicy.MinConformalScores} held-out images) or percentile:p=99.";
        }
        return new CalibrationCheck(share, skew, scores.Length, warning);
    }
}
