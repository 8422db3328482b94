using AnomalyMonitor.Core.Thresholds;

namespace AnomalyMonitor.Tests.Support;

/// <summary>Random draws for the statistics tests; each test passes its own seeded <see cref="Random"/>, never a shared one.</summary>
public static class Draws
{
    /// <summary>A standard normal draw (Box–Muller; two uniforms a draw).</summary>
    public static double Gaussian(Random rng) => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());

    /// <summary>A score whose log is normal with mean -4 and σ <paramref name="logSigma"/>, the shape of a reconstruction error.</summary>
    public static double LogNormal(Random rng, double logSigma = 0.5) => Math.Exp(-4 + (logSigma * Gaussian(rng)));

    /// <summary>A model's calibration: <paramref name="count"/> held-out log-normal scores.</summary>
    public static CalibrationStats LogNormalCalibration(Random rng, int count) =>
        CalibrationStats.From(Enumerable.Range(0, count).Select(_ => (float)LogNormal(rng)).ToArray(), "validation");
}
