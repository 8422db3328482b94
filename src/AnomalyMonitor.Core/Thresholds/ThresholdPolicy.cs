namespace AnomalyMonitor.Core.Thresholds;

public enum ThresholdKind
{
    /// <summary>Anomalous when the error exceeds mean + k·σ (one-sided).</summary>
    MeanKSigma,
    /// <summary>Anomalous when |z| exceeds k: errors unusually low are flagged too (worksheet 002).</summary>
    ZScore,
    /// <summary>Anomalous when the error exceeds the given percentile of the calibration errors.</summary>
    Percentile,
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
    public StatisticSpace Space { get; init; } = StatisticSpace.Log;

    public static readonly ThresholdPolicy Default = new();

    /// <summary>Parses "mean-ksigma", "zscore" or "percentile", with "k=3", "p=99", "log"/"linear" as options: "mean-ksigma:k=3,log".</summary>
    public static ThresholdPolicy Parse(string text)
    {
        var parts = text.Split(':', 2);
        var policy = parts[0].Trim().ToLowerInvariant() switch
        {
            "mean-ksigma" or "meanksigma" or "sigma" => new ThresholdPolicy { Kind = ThresholdKind.MeanKSigma },
            "zscore" or "z-score" or "two-sided" => new ThresholdPolicy { Kind = ThresholdKind.ZScore },
            "percentile" => new ThresholdPolicy { Kind = ThresholdKind.Percentile },
            _ => throw new FormatException($"Threshold '{parts[0]}' is not one of mean-ksigma, zscore, percentile."),
        };
        if (parts.Length < 2) return policy;
        foreach (var option in parts[1].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var kv = option.Split('=', 2);
            var inv = System.Globalization.CultureInfo.InvariantCulture;
            policy = kv[0].ToLowerInvariant() switch
            {
                "k" when kv.Length == 2 && double.TryParse(kv[1], inv, out var k) && k > 0 => policy with { K = k },
                "p" when kv.Length == 2 && double.TryParse(kv[1], inv, out var p) && p is > 0 and < 100 => policy with { Percentile = p },
                "log" => policy with { Space = StatisticSpace.Log },
                "linear" => policy with { Space = StatisticSpace.Linear },
                _ => throw new FormatException($"Threshold option '{option}' is not k=<positive>, p=<0-100>, log or linear."),
            };
        }
        return policy;
    }

    public override string ToString() => Kind switch
    {
        ThresholdKind.Percentile => $"percentile:p={Percentile.ToString(System.Globalization.CultureInfo.InvariantCulture)}",
        ThresholdKind.ZScore => $"zscore:k={K.ToString(System.Globalization.CultureInfo.InvariantCulture)},{Space.ToString().ToLowerInvariant()}",
        _ => $"mean-ksigma:k={K.ToString(System.Globalization.CultureInfo.InvariantCulture)},{Space.ToString().ToLowerInvariant()}",
    };

    /// <summary>Judges against fixed calibration statistics.</summary>
    public Judgement Judge(double score, CalibrationStats stats)
    {
        bool log = Space == StatisticSpace.Log;
        return Judge(score, log ? stats.LogMean : stats.Mean, log ? stats.LogStd : stats.Std,
            Kind == ThresholdKind.Percentile ? stats.Percentile(Percentile) : double.NaN);
    }

    /// <summary>Judges against a mean and σ taken in this policy's space (a rolling window's, say).</summary>
    public Judgement Judge(double score, double mean, double std, double percentileValue = double.NaN)
    {
        double x = Space == StatisticSpace.Log ? Statistics.SafeLog(score) : score;
        double z = std > 0 ? (x - mean) / std : (x > mean ? double.PositiveInfinity : 0);
        double upper = UpperThreshold(mean, std, percentileValue);
        bool anomaly = Kind switch
        {
            ThresholdKind.ZScore => Math.Abs(z) > K,
            ThresholdKind.Percentile => score > upper,
            _ => z > K,
        };
        return new Judgement(anomaly, score, upper, z, mean, std);
    }

    /// <summary>The error above which an image is flagged, on the error scale (not log) whatever the space.</summary>
    public double UpperThreshold(double mean, double std, double percentileValue = double.NaN)
    {
        if (Kind == ThresholdKind.Percentile) return percentileValue;
        double t = mean + (K * std);
        return Space == StatisticSpace.Log ? Math.Exp(t) : t;
    }

    public double UpperThreshold(CalibrationStats stats) => Space == StatisticSpace.Log
        ? UpperThreshold(stats.LogMean, stats.LogStd, Kind == ThresholdKind.Percentile ? stats.Percentile(Percentile) : double.NaN)
        : UpperThreshold(stats.Mean, stats.Std, Kind == ThresholdKind.Percentile ? stats.Percentile(Percentile) : double.NaN);
}
