namespace AnomalyMonitor.Core.Thresholds;

/// <summary>A generalised Pareto distribution fitted to the excesses over a threshold: shape γ, scale σ.</summary>
public readonly record struct ParetoTail(double Gamma, double Sigma, double LogLikelihood);

/// <summary>
/// Streaming peaks-over-threshold (SPOT, Siffer et al., KDD 2017): a threshold for false-alarm rates
/// smaller than one over the number of calibration scores, from an extreme-value fit of the tail.
/// The excesses over a high quantile t of the calibration scores (98% by default) are fitted with a
/// generalised Pareto distribution by maximum likelihood (Grimshaw's reduction to one variable, plus
/// the exponential case and a method-of-moments candidate, the best log-likelihood winning), and
/// z_q = t + σ/γ·((q·n/N_t)^−γ − 1), or t − σ·ln(q·n/N_t) when γ = 0.
/// In the stream, every score judged normal counts in n, and one above t (but below z_q) joins the
/// peaks; alarms are left out, as in the paper. Not thread-safe: the scoring loop owns it.
/// </summary>
public sealed class Spot
{
    /// <summary>The most recent peaks kept; older ones leave with their share of n, so months of stream stay bounded.</summary>
    public const int MaxPeaks = 10_000;

    private readonly Queue<double> _peaks;
    private readonly double _q;
    private long _n;
    private int _sinceFit;

    /// <param name="calibration">Normal scores (any order), in the space the threshold is wanted in.</param>
    /// <param name="q">The false-alarm probability the threshold is for.</param>
    /// <param name="level">The quantile of the calibration scores that starts the tail.</param>
    public Spot(IReadOnlyList<double> calibration, double q, double level = 0.98)
    {
        if (q is <= 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(q), q, "q must be in (0, 1)");
        if (level is <= 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(level), level, "level must be in (0, 1)");
        var sorted = calibration.Where(double.IsFinite).Order().ToArray();
        if (sorted.Length < 50) throw new ArgumentException($"SPOT needs at least 50 calibration scores, got {sorted.Length}.", nameof(calibration));
        _q = q;
        InitialThreshold = sorted[Math.Min(sorted.Length - 1, (int)(level * sorted.Length))];
        _peaks = new Queue<double>(sorted.Where(x => x > InitialThreshold).Select(x => x - InitialThreshold));
        _n = sorted.Length;
        Refit();
    }

    /// <summary>t: where the tail starts.</summary>
    public double InitialThreshold { get; }

    /// <summary>z_q: scores above it are alarms.</summary>
    public double Threshold { get; private set; }

    public ParetoTail Tail { get; private set; }
    public int Peaks => _peaks.Count;
    public long Count => _n;

    /// <summary>Judges one score; a normal one updates the tail (refitted every 20 new peaks, to bound the cost).</summary>
    public bool IsAlarm(double score)
    {
        if (!double.IsFinite(score)) return true;
        if (score > Threshold) return true;
        _n++;
        if (score > InitialThreshold)
        {
            _peaks.Enqueue(score - InitialThreshold);
            if (_peaks.Count > MaxPeaks)
            {
                _n -= _n / _peaks.Count;
                _peaks.Dequeue();
            }
            if (++_sinceFit >= 20) Refit();
        }
        return false;
    }

    private void Refit()
    {
        _sinceFit = 0;
        if (_peaks.Count < 2)
        {
            // Too few peaks to fit: the largest score seen is as far as the data speak.
            double only = _peaks.Count == 1 ? _peaks.Peek() : 0;
            Tail = new ParetoTail(0, only, double.NaN);
            Threshold = InitialThreshold + only;
            return;
        }
        Tail = Fit([.. _peaks]);
        Threshold = Quantile(Tail, InitialThreshold, _q, _n, _peaks.Count);
    }

    /// <summary>z_q for a fitted tail over t, with n observations of which peaks exceeded t.</summary>
    public static double Quantile(ParetoTail tail, double t, double q, long n, int peaks)
    {
        double r = q * n / peaks;
        return Math.Abs(tail.Gamma) < 1e-12 ? t - (tail.Sigma * Math.Log(r)) : t + (tail.Sigma / tail.Gamma * (Math.Pow(r, -tail.Gamma) - 1));
    }

    /// <summary>The maximum-likelihood generalised Pareto fit of positive excesses.</summary>
    public static ParetoTail Fit(IReadOnlyList<double> peaks)
    {
        int n = peaks.Count;
        double mean = 0, min = double.MaxValue, max = 0;
        foreach (var y in peaks)
        {
            mean += y / n;
            min = Math.Min(min, y);
            max = Math.Max(max, y);
        }
        double variance = 0;
        foreach (var y in peaks) variance += (y - mean) * (y - mean) / n;

        // Candidates: the exponential (γ = 0) fit, the method of moments, and each root of Grimshaw's w(x).
        var candidates = new List<(double Gamma, double Sigma)> { (0, mean) };
        if (variance > 0) candidates.Add((0.5 * (1 - (mean * mean / variance)), 0.5 * mean * (1 + (mean * mean / variance))));
        double epsilon = Math.Min(2e-8, 0.5 / max);
        // Negative roots lie in (−1/max, 0), positive ones below 2(mean − min)/min², as in Grimshaw (1993).
        foreach (var (sign, from, to) in new[] { (-1.0, epsilon, (1 / max) - epsilon), (1.0, epsilon, 2 * (mean - min) / Math.Max(min * min, 1e-300)) })
        {
            if (!(to > from)) continue;
            foreach (var x in Roots(x => W(peaks, x), sign, from, to))
            {
                double gamma = MeanLog1p(peaks, x);
                if (Math.Abs(x) > 0 && double.IsFinite(gamma)) candidates.Add((gamma, gamma / x));
            }
        }

        var best = new ParetoTail(0, mean, LogLikelihood(peaks, 0, mean));
        foreach (var (gamma, sigma) in candidates)
        {
            double ll = LogLikelihood(peaks, gamma, sigma);
            if (double.IsFinite(ll) && (!double.IsFinite(best.LogLikelihood) || ll > best.LogLikelihood)) best = new ParetoTail(gamma, sigma, ll);
        }
        return best;
    }

    public static double LogLikelihood(IReadOnlyList<double> peaks, double gamma, double sigma)
    {
        if (!(sigma > 0)) return double.NegativeInfinity;
        int n = peaks.Count;
        if (Math.Abs(gamma) < 1e-12)
        {
            double sum = 0;
            foreach (var y in peaks) sum += y;
            return (-n * Math.Log(sigma)) - (sum / sigma);
        }
        double logs = 0;
        foreach (var y in peaks)
        {
            double a = 1 + (gamma * y / sigma);
            if (a <= 0) return double.NegativeInfinity;
            logs += Math.Log(a);
        }
        return (-n * Math.Log(sigma)) - ((1 + (1 / gamma)) * logs);
    }

    // Grimshaw: w(x) = mean(1 / (1 + xY)) · (1 + mean(ln(1 + xY))) − 1; each root x gives γ = mean(ln(1 + xY)), σ = γ / x.
    private static double W(IReadOnlyList<double> peaks, double x)
    {
        double u = 0, v = 0;
        foreach (var y in peaks)
        {
            double a = 1 + (x * y);
            if (a <= 0) return double.NaN;
            u += 1 / a;
            v += Math.Log(a);
        }
        return (u / peaks.Count * (1 + (v / peaks.Count))) - 1;
    }

    private static double MeanLog1p(IReadOnlyList<double> peaks, double x)
    {
        double v = 0;
        foreach (var y in peaks) v += Math.Log(1 + (x * y));
        return v / peaks.Count;
    }

    /// <summary>
    /// Roots of f for x = sign·m, m in [from, to]: sign changes over a grid even in log m (the interval spans
    /// many orders of magnitude), each bracket closed by bisection.
    /// </summary>
    private static IEnumerable<double> Roots(Func<double, double> f, double sign, double from, double to)
    {
        const int Grid = 200;
        double ratio = Math.Log(to / from);
        double prevX = sign * from, prevF = f(prevX);
        for (int i = 1; i <= Grid; i++)
        {
            double x = sign * from * Math.Exp(ratio * i / Grid), fx = f(x);
            if (double.IsFinite(prevF) && double.IsFinite(fx) && Math.Sign(prevF) != Math.Sign(fx))
            {
                double a = prevX, b = x, fa = prevF;
                for (int k = 0; k < 200 && Math.Abs(b - a) > 1e-13 * Math.Max(Math.Abs(a), Math.Abs(b)); k++)
                {
                    double m = 0.5 * (a + b), fm = f(m);
                    if (Math.Sign(fm) == Math.Sign(fa)) (a, fa) = (m, fm);
                    else b = m;
                }
                yield return 0.5 * (a + b);
            }
            (prevX, prevF) = (x, fx);
        }
    }
}
