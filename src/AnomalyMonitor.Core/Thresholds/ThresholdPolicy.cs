using System.Globalization;

namespace AnomalyMonitor.Core.Thresholds;

public enum ThresholdKind
{
    /// <summary>Anomalous when the error exceeds mean + k·σ (one-sided).</summary>
    MeanKSigma,
    /// <summary>Anomalous when |z| exceeds k: errors unusually low are flagged too (worksheet 002).</summary>
    ZScore,
    /// <summary>Anomalous when the error exceeds the given percentile of the calibration errors.</summary>
    Percentile,
    /// <summary>Split-conformal: anomalous when the p-value against the held-out normal scores is at most α.</summary>
    Conformal,
    /// <summary>Extreme-value (SPOT): anomalous above the q-quantile of a generalised Pareto fit of the calibration tail.</summary>
    Spot,
}

public enum StatisticSpace
{
    /// <summary>Mean and σ of the errors themselves.</summary>
    Linear,
    /// <summary>Mean and σ of ln(error). Keeps mean + kσ near its Gaussian false-alarm rate for right-skewed errors.</summary>
    Log,
}

/// <summary>A verdict with the numbers behind it, in the space the statistics were taken in.</summary>
public readonly record struct Judgement(bool IsAnomaly, double Score, double Threshold, double ZScore, double Mean, double Std);

/// <summary>How a score becomes a verdict. Plain C#: no TorchSharp.</summary>
public sealed record ThresholdPolicy
{
    public ThresholdKind Kind { get; init; } = ThresholdKind.MeanKSigma;
    public double K { get; init; } = 3.0;
    public double Percentile { get; init; } = 99.0;
    /// <summary>Conformal: the false-alarm rate promised (alarm when p ≤ α).</summary>
    public double Alpha { get; init; } = 0.01;
    /// <summary>SPOT: the false-alarm probability the extreme-value threshold is for.</summary>
    public double Q { get; init; } = 1e-4;
    /// <summary>SPOT: the calibration quantile where the tail starts.</summary>
    public double Level { get; init; } = 0.98;
    public StatisticSpace Space { get; init; } = StatisticSpace.Log;

    /// <summary>Split-conformal p-values need this many held-out normal scores to be worth their name.</summary>
    public const int MinConformalScores = 1000;

    public static readonly ThresholdPolicy Default = new();

    /// <summary>
    /// Parses "mean-ksigma", "zscore", "percentile", "conformal" or "spot", with options "k=3", "p=99",
    /// "alpha=0.01", "q=1e-4", "level=0.98", "log"/"linear": "mean-ksigma:k=3,log", "conformal:alpha=0.01".
    /// </summary>
    public static ThresholdPolicy Parse(string text)
    {
        var parts = text.Split(':', 2);
        var policy = parts[0].Trim().ToLowerInvariant() switch
        {
            "mean-ksigma" or "meanksigma" or "sigma" => new ThresholdPolicy { Kind = ThresholdKind.MeanKSigma },
            "zscore" or "z-score" or "two-sided" => new ThresholdPolicy { Kind = ThresholdKind.ZScore },
            "percentile" => new ThresholdPolicy { Kind = ThresholdKind.Percentile },
            "conformal" => new ThresholdPolicy { Kind = ThresholdKind.Conformal },
            "spot" or "evt" => new ThresholdPolicy { Kind = ThresholdKind.Spot },
            _ => throw new FormatException($"Threshold '{parts[0]}' is not one of mean-ksigma, zscore, percentile, conformal, spot."),
        };
        if (parts.Length < 2) return policy;
        foreach (var option in parts[1].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var kv = option.Split('=', 2);
            var inv = CultureInfo.InvariantCulture;
            double v = 0;
            bool number = kv.Length == 2 && double.TryParse(kv[1], NumberStyles.Float, inv, out v);
            policy = kv[0].ToLowerInvariant() switch
            {
                "k" when number && v > 0 => policy with { K = v },
                "p" when number && v is > 0 and < 100 => policy with { Percentile = v },
                "alpha" when number && v is > 0 and < 1 => policy with { Alpha = v },
                "q" when number && v is > 0 and < 1 => policy with { Q = v },
                "level" when number && v is > 0 and < 1 => policy with { Level = v },
                "log" => policy with { Space = StatisticSpace.Log },
                "linear" => policy with { Space = StatisticSpace.Linear },
                _ => throw new FormatException($"Threshold option '{option}' is not k=<positive>, p=<0-100>, alpha=<0-1>, q=<0-1>, level=<0-1>, log or linear."),
            };
        }
        return policy;
    }

    public override string ToString()
    {
        var inv = CultureInfo.InvariantCulture;
        var space = Space.ToString().ToLowerInvariant();
        return Kind switch
        {
            ThresholdKind.Percentile => $"percentile:p={Percentile.ToString(inv)}",
            ThresholdKind.ZScore => $"zscore:k={K.ToString(inv)},{space}",
            ThresholdKind.Conformal => $"conformal:alpha={Alpha.ToString(inv)}",
            ThresholdKind.Spot => $"spot:q={Q.ToString(inv)},level={Level.ToString(inv)},{space}",
            _ => $"mean-ksigma:k={K.ToString(inv)},{space}",
        };
    }

    /// <summary>True for rules whose threshold is a fixed point of the calibration scores rather than mean and σ.</summary>
    public bool UsesScores => Kind is ThresholdKind.Percentile or ThresholdKind.Conformal or ThresholdKind.Spot;

    /// <summary>Judges against fixed calibration statistics.</summary>
    public Judgement Judge(double score, CalibrationStats stats)
    {
        bool log = Space == StatisticSpace.Log;
        return Judge(score, log ? stats.LogMean : stats.Mean, log ? stats.LogStd : stats.Std, UsesScores ? FixedThreshold(stats) : double.NaN);
    }

    /// <summary>Judges against a mean and σ taken in this policy's space (a rolling window's, say), or a fixed threshold.</summary>
    public Judgement Judge(double score, double mean, double std, double fixedThreshold = double.NaN)
    {
        double x = Space == StatisticSpace.Log ? Statistics.SafeLog(score) : score;
        double z = std > 0 ? (x - mean) / std : (x > mean ? double.PositiveInfinity : 0);
        double upper = UpperThreshold(mean, std, fixedThreshold);
        bool anomaly = Kind switch
        {
            ThresholdKind.ZScore => Math.Abs(z) > K,
            ThresholdKind.MeanKSigma => z > K,
            _ => !(score <= upper), // NaN scores are anomalies
        };
        return new Judgement(anomaly, score, upper, z, mean, std);
    }

    /// <summary>The error above which an image is flagged, on the error scale (not log) whatever the space.</summary>
    public double UpperThreshold(double mean, double std, double fixedThreshold = double.NaN)
    {
        if (UsesScores) return fixedThreshold;
        double t = mean + (K * std);
        return Space == StatisticSpace.Log ? Math.Exp(t) : t;
    }

    public double UpperThreshold(CalibrationStats stats) => Space == StatisticSpace.Log
        ? UpperThreshold(stats.LogMean, stats.LogStd, UsesScores ? FixedThreshold(stats) : double.NaN)
        : UpperThreshold(stats.Mean, stats.Std, UsesScores ? FixedThreshold(stats) : double.NaN);

    /// <summary>The percentile, conformal or SPOT threshold of a calibration, on the error scale.</summary>
    public double FixedThreshold(CalibrationStats stats) => Kind switch
    {
        ThresholdKind.Percentile => stats.Scores is { Length: > 0 } s ? Statistics.Percentile(s.Select(v => (double)v).ToArray(), Percentile) : stats.Percentile(Percentile),
        ThresholdKind.Conformal => Conformal.Threshold(RequireScores(stats, MinConformalScores), Alpha),
        ThresholdKind.Spot => SpotThreshold(RequireScores(stats, 50)),
        _ => throw new InvalidOperationException($"{this} has no fixed threshold."),
    };

    /// <summary>A SPOT tail fitted in this policy's space; its threshold back on the error scale.</summary>
    public Spot CreateSpot(float[] scores) => new([.. scores.Select(s => ToSpace(s))], Q, Level);

    private double SpotThreshold(float[] scores) => FromSpace(CreateSpot(scores).Threshold);

    public double ToSpace(double score) => Space == StatisticSpace.Log ? Statistics.SafeLog(score) : score;

    public double FromSpace(double value) => Space == StatisticSpace.Log ? Math.Exp(value) : value;

    private float[] RequireScores(CalibrationStats stats, int minimum)
    {
        if (stats.Scores is not { } scores || scores.Length == 0)
            throw new InvalidOperationException($"The rule {this} needs the model's held-out calibration scores, and this model's manifest predates them: retrain it.");
        if (scores.Length < minimum)
            throw new InvalidOperationException($"The rule {this} needs at least {minimum} held-out calibration scores; this model has {scores.Length}. Train on more images or with a larger --validation-split.");
        return scores;
    }
}

/// <summary>Split-conformal p-values against held-out normal scores (exchangeable with the stream's normals).</summary>
public static class Conformal
{
    /// <summary>p(s) = (1 + #{calibration scores ≥ s}) / (n + 1): the share of normals at least as odd as s.</summary>
    public static double PValue(ReadOnlySpan<float> sortedScores, double score)
    {
        int n = sortedScores.Length;
        // First index whose score is ≥ s.
        int lo = 0, hi = n;
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (sortedScores[mid] < score) lo = mid + 1;
            else hi = mid;
        }
        return (1.0 + (n - lo)) / (n + 1.0);
    }

    /// <summary>
    /// The score above which p ≤ α: the (n − m)-th smallest calibration score, m = ⌊α(n + 1)⌋ − 1. A score
    /// tied with it has p > α. Infinite when α is too small for n scores to ever reject.
    /// </summary>
    public static double Threshold(ReadOnlySpan<float> sortedScores, double alpha)
    {
        int n = sortedScores.Length;
        int m = (int)Math.Floor(alpha * (n + 1)) - 1;
        if (m < 0) return double.PositiveInfinity;
        return sortedScores[Math.Max(0, n - m - 1)];
    }
}
