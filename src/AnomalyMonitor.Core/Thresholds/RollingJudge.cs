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
}

/// <summary>A verdict from the rolling judge, with whether the item may train the next model.</summary>
public readonly record struct Verdict(Judgement Judgement, bool Accepted, bool FromWindow)
{
    public bool IsAnomaly => Judgement.IsAnomaly;
}

/// <summary>The saved form of the judge: the window, in the judge's space, and the model it belongs to.</summary>
public sealed record JudgeState(string ModelFingerprint, StatisticSpace Space, RollingState Window);

/// <summary>
/// Judges scores against mean + kσ of the last N scores judged normal, falling back to the model's
/// calibration until the window is full enough. Not thread-safe: the scoring loop owns it.
/// </summary>
/// <remarks>
/// The window only ever sees scores below its own threshold, so it samples a distribution truncated at
/// mean + kσ: its σ reads low and its mean a little low. Uncorrected, each turnover lowers the
/// threshold slightly (about 0.7% of σ at k = 3), which compounds. With the correction the window's
/// statistics are mapped back to those of the untruncated distribution (the truncated-normal moments
/// with the truncation point at exactly k, which is where the judge put it), so the threshold stays put.
/// </remarks>
public sealed class RollingJudge
{
    private readonly JudgeSettings _settings;
    private readonly RollingStatistics _window;
    private readonly ThresholdPolicy _policy;
    private readonly double _sigmaFactor;
    private readonly double _meanShift;
    private CalibrationStats _calibration;

    public RollingJudge(JudgeSettings settings, CalibrationStats calibration)
    {
        _settings = settings;
        _calibration = calibration;
        _window = new RollingStatistics(settings.Window);
        _policy = new ThresholdPolicy
        {
            Kind = settings.TwoSided ? ThresholdKind.ZScore : ThresholdKind.MeanKSigma,
            K = settings.K,
            Space = settings.Space,
        };
        (_sigmaFactor, _meanShift) = settings.TruncationCorrection ? TruncationCorrection(settings.K, settings.TwoSided) : (1, 0);
    }

    public int WindowCount => _window.Count;
    public bool UsingWindow => _window.Count >= _settings.MinWindow;
    public ThresholdPolicy Policy => _policy;

    /// <summary>Mean and σ in the judge's space, as used for the next verdict.</summary>
    public (double Mean, double Std) Statistics()
    {
        if (!UsingWindow)
            return _settings.Space == StatisticSpace.Log ? (_calibration.LogMean, _calibration.LogStd) : (_calibration.Mean, _calibration.Std);
        double std = _window.Std * _sigmaFactor;
        return (_window.Mean + (_meanShift * std), std);
    }

    /// <summary>The error above which an item is an anomaly right now, on the error scale.</summary>
    public double Threshold
    {
        get
        {
            var (mean, std) = Statistics();
            return _policy.UpperThreshold(mean, std);
        }
    }

    public Verdict Judge(double score)
    {
        var (mean, std) = Statistics();
        bool fromWindow = UsingWindow;
        var judgement = _policy.Judge(score, mean, std);
        bool accepted = false;
        if (!judgement.IsAnomaly && double.IsFinite(score))
        {
            _window.Add(_settings.Space == StatisticSpace.Log ? Thresholds.Statistics.SafeLog(score) : score);
            accepted = judgement.ZScore < _settings.Accept && (!_settings.TwoSided || judgement.ZScore > -_settings.K);
        }
        return new Verdict(judgement, accepted, fromWindow);
    }

    /// <summary>Starts over from a new model's calibration: old scores are on another model's scale.</summary>
    public void Rebaseline(CalibrationStats calibration)
    {
        _calibration = calibration;
        _window.Clear();
    }

    public JudgeState Save(string modelFingerprint) => new(modelFingerprint, _settings.Space, _window.Save());

    /// <summary>Restores a saved window if it belongs to the same model and space; returns whether it did.</summary>
    public bool Restore(JudgeState state, string modelFingerprint)
    {
        if (state.ModelFingerprint != modelFingerprint || state.Space != _settings.Space) return false;
        _window.Restore(state.Window);
        return true;
    }

    /// <summary>σ factor and mean shift (in σ units) that undo truncation at +k (or at ±k when two-sided).</summary>
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
