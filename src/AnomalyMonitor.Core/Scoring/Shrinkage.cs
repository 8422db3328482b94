namespace AnomalyMonitor.Core.Scoring;

/// <summary>
/// How far a latent covariance is pulled towards its average variance (Σ = (1 − ρ)·S + ρ·μ·I). A fixed ρ
/// suits one sample size: a covariance of 64 dimensions from 150 codes (a cold start's mixture component)
/// has far smaller bottom eigenvalues than the truth, and its inverse then scores noise directions. The
/// oracle approximating shrinkage (OAS; Chen, Wiesel, Eldar and Hero, IEEE TSP 2010) picks ρ from the
/// sample itself: large for few codes a dimension, small for many.
/// </summary>
public static class Shrinkage
{
    /// <summary>The sentinel that asks for <see cref="Oas"/> instead of a fixed ρ.</summary>
    public const double Auto = double.NaN;

    public static bool IsAuto(double shrinkage) => double.IsNaN(shrinkage);

    /// <summary>
    /// OAS's ρ from tr(S), tr(S²) (the sum of S's squared entries), d and n:
    /// ((1 − 2/d)·tr(S²) + tr(S)²) / ((n + 1 − 2/d)·(tr(S²) − tr(S)²/d)), at most 1.
    /// </summary>
    public static double Oas(double traceS, double traceS2, int dimensions, double samples)
    {
        double d = dimensions;
        double numerator = ((1 - (2 / d)) * traceS2) + (traceS * traceS);
        double denominator = (samples + 1 - (2 / d)) * (traceS2 - (traceS * traceS / d));
        // A covariance that is already a multiple of I (or empty) has nothing to shrink towards.
        return denominator <= 0 ? 1 : Math.Clamp(numerator / denominator, 0, 1);
    }

    /// <summary>OAS's ρ of a d × d sample covariance tensor from <paramref name="samples"/> (effective) codes.</summary>
    public static double Oas(TorchSharp.torch.Tensor covariance, double samples) =>
        Oas(covariance.trace().item<double>(), covariance.square().sum().item<double>(), (int)covariance.shape[0], samples);

    /// <summary>Parses a setting: a number in [0, 1] or "auto".</summary>
    public static double Parse(string text) =>
        text.Trim().Equals("auto", StringComparison.OrdinalIgnoreCase) ? Auto
        : double.TryParse(text, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var v) && v is >= 0 and <= 1 ? v
        : throw new FormatException($"Latent shrinkage '{text}' is not auto or a number from 0 to 1.");

    public static string Name(double shrinkage) => IsAuto(shrinkage) ? "auto" : shrinkage.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
