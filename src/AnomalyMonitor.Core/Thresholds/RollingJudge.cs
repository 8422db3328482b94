namespace AnomalyMonitor.Core.Thresholds;

public sealed record JudgeSettings
{
    public double K { get; init; } = 3;
    public bool TwoSided { get; init; }
    public StatisticSpace Space { get; init; } = StatisticSpace.Log;
    public int Window { get; init; } = 5000;
    public int MinWindow { get; init; } = 200;
    public bool TruncationCorrection { get; init; } = true;
    public double Accept { get; init; } = 1;
    /// <summary>
    /// The rule, with its own parameters: a rolling mean-ksigma or zscore, or a fixed percentile, conformal
    /// or SPOT rule. Null: the rolling mean + kσ (|z| > k with TwoSided) with K and Space above.
    /// </summary>
    public ThresholdPolicy? Rule { get; init; }

    public ThresholdPolicy Policy => Rule ?? new ThresholdPolicy { Kind = TwoSided ? ThresholdKind.ZScore : ThresholdKind.MeanKSigma, K = K, Space = Space };
}

/// <summary>A verdict from the rolling judge, with whether the item may train the next model.</summary>
public readonly record struct Verdict(Judgement Judgement, bool Accepted, bool FromWindow)
{
    public bool IsAnomaly => Judgement.IsAnomaly;
}

/// <summary>The saved form of the judge: the window, in the judge's space, and the model it belongs to.</summary>
public sealed record JudgeState(string ModelFingerprint, StatisticSpace Space, RollingState Window);

/// <summary>
/// Judges scores. The default rule compares each with mean + kσ of the last N scores judged normal,
/// falling back to the model's calibration until the window is full enough. The percentile and
/// conformal rules judge against a fixed point of the model's held-out calibration scores, and SPOT
/// against its extreme-value fit, updated with the stream's normal scores. Not thread-safe: the scoring
/// loop owns it.
/// </summary>
/// <remarks>
/// The window only ever sees scores below its own threshold: it samples the normal distribution cut off
/// at mean + kσ, so its σ reads low and its mean a little low, and left alone each turnover lowers the
/// threshold, which cuts off more, which lowers it again. How much the cut removes depends on the shape of
/// the tail: for a Gaussian, 0.13% at k = 3, but reconstruction errors have heavier tails than that even
/// in log space, and cutting a heavy tail removes far more variance than the Gaussian formula restores.
/// That was why a stream of held-out normals drew twice the false alarms that `evaluate` reported for the
/// same model and k. So the correction is measured, not assumed: on the model's own held-out scores it
/// compares the full mean and σ with those of the same scores cut at the same point, and maps the
/// window's statistics back by those two numbers. For a stream whose normals have the calibration's shape
/// (up to location and scale), the corrected window reproduces the calibration's mean and σ, so the
/// threshold sits where `evaluate` puts it; it is a fixed point, and the window's cut stays where it is.
/// Models without stored calibration scores use the Gaussian (truncated-normal) correction.
/// </remarks>
public sealed class RollingJudge
{
    private readonly JudgeSettings _settings;
    private readonly RollingStatistics _window;
    private readonly ThresholdPolicy _policy;
    private CalibrationStats _calibration;
    private double _sigmaFactor;
    private double _meanShift;
    private double _fixed;
    private Spot? _spot;

    public RollingJudge(JudgeSettings settings, CalibrationStats calibration)
    {
        _settings = settings;
        _policy = settings.Policy;
        _window = new RollingStatistics(settings.Window);
        _calibration = calibration;
        Calibrate(calibration);
    }

    public int WindowCount => _window.Count;
    public bool UsingWindow => !_policy.UsesScores && _window.Count >= _settings.MinWindow;
    public ThresholdPolicy Policy => _policy;

    /// <summary>The truncation correction in use: σ factor, and mean shift in corrected σ.</summary>
    public (double SigmaFactor, double MeanShift) Correction => (_sigmaFactor, _meanShift);

    /// <summary>Mean and σ in the judge's space, as used for the next verdict.</summary>
    public (double Mean, double Std) Statistics()
    {
        if (!UsingWindow)
            return _policy.Space == StatisticSpace.Log ? (_calibration.LogMean, _calibration.LogStd) : (_calibration.Mean, _calibration.Std);
        double std = _window.Std * _sigmaFactor;
        return (_window.Mean + (_meanShift * std), std);
    }

    /// <summary>The error above which an item is an anomaly right now, on the error scale.</summary>
    public double Threshold
    {
        get
        {
            if (_spot is not null) return _policy.FromSpace(_spot.Threshold);
            var (mean, std) = Statistics();
            return _policy.UpperThreshold(mean, std, _fixed);
        }
    }

    public Verdict Judge(double score)
    {
        var (mean, std) = Statistics();
        bool fromWindow = UsingWindow;
        var judgement = _policy.Judge(score, mean, std, _spot is null ? _fixed : _policy.FromSpace(_spot.Threshold));
        if (_spot is not null && double.IsFinite(score))
        {
            // SPOT decides and learns in one step: a normal score above the tail's start refines the fit.
            bool alarm = _spot.IsAlarm(_policy.ToSpace(score));
            judgement = judgement with { IsAnomaly = alarm };
        }
        bool accepted = false;
        if (!judgement.IsAnomaly && double.IsFinite(score))
        {
            _window.Add(_policy.ToSpace(score));
            accepted = judgement.ZScore < _settings.Accept && (_policy.Kind != ThresholdKind.ZScore || judgement.ZScore > -_settings.K);
        }
        return new Verdict(judgement, accepted, fromWindow);
    }

    /// <summary>Starts over from a new model's calibration: old scores are on another model's scale.</summary>
    public void Rebaseline(CalibrationStats calibration)
    {
        _calibration = calibration;
        _window.Clear();
        Calibrate(calibration);
    }

    public JudgeState Save(string modelFingerprint) => new(modelFingerprint, _policy.Space, _window.Save());

    /// <summary>Restores a saved window if it belongs to the same model and space; returns whether it did.</summary>
    public bool Restore(JudgeState state, string modelFingerprint)
    {
        if (state.ModelFingerprint != modelFingerprint || state.Space != _policy.Space) return false;
        _window.Restore(state.Window);
        return true;
    }

    private void Calibrate(CalibrationStats calibration)
    {
        _fixed = double.NaN;
        _spot = null;
        if (_policy.Kind == ThresholdKind.Spot) _spot = _policy.CreateSpot(calibration.Scores ?? []);
        else if (_policy.UsesScores) _fixed = _policy.FixedThreshold(calibration);
        (_sigmaFactor, _meanShift) = !_settings.TruncationCorrection ? (1, 0)
            : calibration.Scores is { Length: >= 50 } scores ? EmpiricalCorrection(scores.Select(s => _policy.ToSpace(s)).ToArray(), _policy.K, _policy.Kind == ThresholdKind.ZScore)
            : TruncationCorrection(_policy.K, _policy.Kind == ThresholdKind.ZScore);
    }

    /// <summary>
    /// σ factor and mean shift (in units of the full σ) that map the statistics of <paramref name="values"/>
    /// cut at mean + kσ (or outside ±kσ) back to those of all of them.
    /// </summary>
    internal static (double SigmaFactor, double MeanShift) EmpiricalCorrection(double[] values, double k, bool twoSided)
    {
        var (mean, std) = Thresholds.Statistics.MeanStd(values);
        if (!(std > 0)) return (1, 0);
        var kept = values.Where(v => twoSided ? Math.Abs(v - mean) <= k * std : v <= mean + (k * std)).ToArray();
        var (keptMean, keptStd) = Thresholds.Statistics.MeanStd(kept);
        if (kept.Length < 2 || !(keptStd > 0)) return (1, 0);
        return (std / keptStd, (mean - keptMean) / std);
    }

    /// <summary>σ factor and mean shift (in σ units) that undo truncation at +k (or at ±k when two-sided) of a normal distribution.</summary>
    internal static (double SigmaFactor, double MeanShift) TruncationCorrection(double k, bool twoSided)
    {
        double phi = Math.Exp(-k * k / 2) / Math.Sqrt(2 * Math.PI);
        double cdf = NormalCdf(k);
        if (twoSided)
        {
            double mass = (2 * cdf) - 1;
            return (1 / Math.Sqrt(1 - (2 * k * phi / mass)), 0);
        }
        double lambda = phi / cdf;
        return (1 / Math.Sqrt(1 - (k * lambda) - (lambda * lambda)), lambda);
    }

    // Abramowitz & Stegun 7.1.26 via erf; ample precision (1.5e-7) for a correction factor.
    internal static double NormalCdf(double x)
    {
        double z = Math.Abs(x) / Math.Sqrt(2);
        double t = 1 / (1 + (0.3275911 * z));
        double poly = ((((((((1.061405429 * t) - 1.453152027) * t) + 1.421413741) * t) - 0.284496736) * t) + 0.254829592) * t;
        double erf = 1 - (poly * Math.Exp(-z * z));
        return x >= 0 ? 0.5 * (1 + erf) : 0.5 * (1 - erf);
    }
}
