namespace AnomalyMonitor.Core.Thresholds;

/// <summary>Statistics of a model's errors on known-normal images, kept in the manifest and used to set thresholds.</summary>
public sealed record CalibrationStats
{
    /// <summary>Which errors these are: "validation" (held out from training, the default) or "training".</summary>
    public string Source { get; init; } = "validation";
    public int Count { get; init; }
    public double Mean { get; init; }
    public double Std { get; init; }
    /// <summary>Mean and σ of ln(error): real reconstruction errors are right-skewed and close to log-normal.</summary>
    public double LogMean { get; init; }
    public double LogStd { get; init; }
    public double Min { get; init; }
    public double Max { get; init; }
    public Dictionary<string, double> Percentiles { get; init; } = [];
    /// <summary>
    /// The held-out errors themselves, sorted: the conformal and SPOT rules and the rolling judge's truncation
    /// correction need the whole distribution, not its moments. Absent in models written before them.
    /// </summary>
    public float[]? Scores { get; init; }

    public static readonly double[] StoredPercentiles = [50, 90, 95, 99, 99.5, 99.9];

    public static CalibrationStats From(IReadOnlyCollection<float> errors, string source)
    {
        if (errors.Count == 0)
            throw new ArgumentException("Calibration needs at least one error.", nameof(errors));
        var values = errors.Select(e => (double)e).ToArray();
        Array.Sort(values);
        var (mean, std) = Statistics.MeanStd(values);
        var logs = values.Select(Statistics.SafeLog).ToArray();
        var (logMean, logStd) = Statistics.MeanStd(logs);
        return new CalibrationStats
        {
            Source = source,
            Count = values.Length,
            Mean = mean,
            Std = std,
            LogMean = logMean,
            LogStd = logStd,
            Min = values[0],
            Max = values[^1],
            Percentiles = StoredPercentiles.ToDictionary(
                p => p.ToString(System.Globalization.CultureInfo.InvariantCulture),
                p => Statistics.Percentile(values, p)),
            Scores = [.. values.Select(v => (float)v)],
        };
    }

    public double Percentile(double p)
    {
        var key = p.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return Percentiles.TryGetValue(key, out var v)
            ? v
            : throw new ArgumentException($"The calibration keeps percentiles {string.Join(", ", Percentiles.Keys)}, not {key}.");
    }
}
