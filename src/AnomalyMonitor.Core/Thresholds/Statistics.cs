namespace AnomalyMonitor.Core.Thresholds;

/// <summary>Descriptive statistics used by the thresholds, in plain C# so they can be checked without TorchSharp.</summary>
public static class Statistics
{
    /// <summary>Mean and population standard deviation, two-pass for accuracy.</summary>
    public static (double Mean, double Std) MeanStd(ReadOnlySpan<double> values)
    {
        if (values.IsEmpty) return (double.NaN, double.NaN);
        double sum = 0;
        foreach (var v in values) sum += v;
        double mean = sum / values.Length, squares = 0;
        foreach (var v in values) squares += (v - mean) * (v - mean);
        return (mean, Math.Sqrt(squares / values.Length));
    }

    /// <summary>The p-th percentile (0-100) with linear interpolation between ranks, as numpy's default.</summary>
    public static double Percentile(ReadOnlySpan<double> sortedAscending, double p)
    {
        if (sortedAscending.IsEmpty) return double.NaN;
        if (p is < 0 or > 100) throw new ArgumentOutOfRangeException(nameof(p), p, "percentile must be within 0-100");
        double rank = p / 100.0 * (sortedAscending.Length - 1);
        int lo = (int)Math.Floor(rank), hi = (int)Math.Ceiling(rank);
        return sortedAscending[lo] + ((rank - lo) * (sortedAscending[hi] - sortedAscending[lo]));
    }

    /// <summary>The log used for log-space statistics; errors are floored so a perfect reconstruction stays finite.</summary>
    public static double SafeLog(double value) => Math.Log(Math.Max(value, 1e-12));
}
