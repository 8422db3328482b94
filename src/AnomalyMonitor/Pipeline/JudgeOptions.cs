using AnomalyMonitor.Configuration;
using AnomalyMonitor.Core.Thresholds;
using Microsoft.Extensions.Options;

namespace AnomalyMonitor.Pipeline;

public sealed class JudgeOptions
{
    public const string Section = "Judge";
    public double K { get; set; } = 3;
    public bool TwoSided { get; set; }
    /// <summary>
    /// Empty: the rolling mean + K·σ (|z| > K with TwoSided) in Space. Otherwise a rule with its own
    /// parameters, as `--threshold` takes it: "conformal:alpha=0.01", "spot:q=1e-4", "percentile:p=99.5",
    /// "mean-ksigma:k=3,log".
    /// </summary>
    public string Rule { get; set; } = "";
    /// <summary>Log (default): statistics of ln(score), for right-skewed errors. Linear: of the scores themselves.</summary>
    public StatisticSpace Space { get; set; } = StatisticSpace.Log;
    public int Window { get; set; } = 5000;
    /// <summary>Until the window holds this many scores, the model's calibration statistics judge.</summary>
    public int MinWindow { get; set; } = 200;
    /// <summary>Correct the window's mean and σ for being fed only scores below its own threshold.</summary>
    public bool TruncationCorrection { get; set; } = true;
    /// <summary>Items below mean + Accept·σ enter the normal-sample store.</summary>
    public double Accept { get; set; } = 1;
    /// <summary>
    /// The window learns in blocks of min(MinWindow, 200) accepted scores and refuses a block with more than
    /// a quarter, by this many binomial σ, just under the accept cut: the anomalies a model cannot tell apart
    /// crowd there, and a stream mostly of them must not teach the judge they are normal. 0: off.
    /// </summary>
    public double Guard { get; set; } = 3;
    /// <summary>
    /// The calibration's weight beside the window, in multiples of its count of held-out scores: the threshold
    /// comes from both, pooled by size, so a short run of unusually clean (or rough) normals cannot move it
    /// further than its evidence allows. 0: the window alone.
    /// </summary>
    public double CalibrationWeight { get; set; } = 1;
    /// <summary>
    /// The calibration's threshold is a floor: the window may raise the threshold (a stream rougher than the
    /// held-out normals), never lower it. False: the window moves it both ways.
    /// </summary>
    public bool Floor { get; set; } = true;
    public TimeSpan SaveInterval { get; set; } = TimeSpan.FromSeconds(30);
    public DriftOptions Drift { get; set; } = new();
}

public sealed class DriftOptions
{
    /// <summary>A level shift is declared when more than this fraction of items are anomalous...</summary>
    public double Fraction { get; set; } = 0.5;
    /// <summary>...for longer than this...</summary>
    public TimeSpan Duration { get; set; } = TimeSpan.FromMinutes(5);
    /// <summary>...counting at least this many items.</summary>
    public int MinItems { get; set; } = 50;
}

internal sealed class JudgeOptionsValidator : IValidateOptions<JudgeOptions>
{
    public ValidateOptionsResult Validate(string? name, JudgeOptions o)
    {
        var f = new List<string>();
        if (o.K <= 0) f.Add($"Judge:K must be positive, was {o.K}.");
        if (!string.IsNullOrWhiteSpace(o.Rule))
        {
            try { Core.Thresholds.ThresholdPolicy.Parse(o.Rule); }
            catch (FormatException e) { f.Add($"Judge:Rule: {e.Message}"); }
        }
        OptionChecks.AtLeast(f, "Judge:Window", o.Window, 2);
        if (o.MinWindow < 2 || o.MinWindow > o.Window) f.Add($"Judge:MinWindow must be between 2 and Judge:Window ({o.Window}), was {o.MinWindow}.");
        if (o.Accept > o.K) f.Add($"Judge:Accept ({o.Accept}) must not exceed Judge:K ({o.K}): only items well inside the normal range may train the next model.");
        if (!(o.Guard >= 0)) f.Add($"Judge:Guard must be 0 (off) or positive, was {o.Guard}.");
        if (!(o.CalibrationWeight >= 0) || double.IsInfinity(o.CalibrationWeight)) f.Add($"Judge:CalibrationWeight must be 0 (the window alone) or positive, was {o.CalibrationWeight}.");
        OptionChecks.Positive(f, "Judge:SaveInterval", o.SaveInterval);
        if (o.Drift.Fraction is <= 0 or > 1) f.Add($"Judge:Drift:Fraction must be in (0, 1], was {o.Drift.Fraction}.");
        OptionChecks.Positive(f, "Judge:Drift:Duration", o.Drift.Duration);
        OptionChecks.AtLeast(f, "Judge:Drift:MinItems", o.Drift.MinItems, 1);
        return OptionChecks.Result(f);
    }
}
