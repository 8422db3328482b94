using AnomalyMonitor.Configuration;
using AnomalyMonitor.Core.Imaging;
using AnomalyMonitor.Core.Models;
using AnomalyMonitor.Core.Scoring;
using AnomalyMonitor.Core.Training;
using Microsoft.Extensions.Options;

namespace AnomalyMonitor.Pipeline;

public sealed class BootstrapOptions
{
    public const string Section = "Bootstrap";
    /// <summary>Train the first model from this data at start (IDX/npz/folder) when there is no model.</summary>
    public string? Data { get; set; }
    public string? NormalClass { get; set; }
    /// <summary>Otherwise, learn from the first N items received.</summary>
    public int Samples { get; set; } = 1000;
    /// <summary>The first model's detector; the defaults are the one chosen on validation (see Recommended).</summary>
    public string Architecture { get; set; } = Recommended.Architecture;
    /// <summary>Code size; unset: 64 for the conv encoders, the worksheet's size otherwise.</summary>
    public int? Latent { get; set; }
    /// <summary>reconstruction, latent or combined.</summary>
    public string Score { get; set; } = Detector.Name(Recommended.Score);
    /// <summary>Restoration training: none, or affine:rot=R,shift=S.</summary>
    public string Augment { get; set; } = Recommended.AugmentationText;
    /// <summary>Gaussians in the latent density: 1, or a mixture of more (train --latent-components).</summary>
    public int LatentComponents { get; set; } = Recommended.LatentComponents;
    /// <summary>
    /// Mixture fits pooled into the first model's latent density, and whether the density takes the held-out
    /// codes too (calibrated by cross-fitting). On 1,000 images one k-means seed's luck moved digit 1's recall at
    /// 1% false alarms from 86 to 96 on validation; three fits on all the codes gave 94–95 (docs/benchmarks.md, 2b).
    /// </summary>
    public int LatentFits { get; set; } = 3;
    public bool LatentHeldOut { get; set; } = true;
    public string? Shape { get; set; } = "28x28x1";
    public int Epochs { get; set; } = Recommended.Epochs;
    /// <summary>Optimizer steps the first model may take at least: the first thousand items are only eight steps an epoch.</summary>
    public int MinSteps { get; set; } = 3000;
    public int? Seed { get; set; }
}

internal sealed class BootstrapOptionsValidator : IValidateOptions<BootstrapOptions>
{
    public ValidateOptionsResult Validate(string? name, BootstrapOptions o)
    {
        var f = new List<string>();
        OptionChecks.AtLeast(f, "Bootstrap:Samples", o.Samples, 2);
        OptionChecks.AtLeast(f, "Bootstrap:Epochs", o.Epochs, 1);
        OptionChecks.AtLeast(f, "Bootstrap:MinSteps", o.MinSteps, 0);
        if (o.Latent is < 1) f.Add($"Bootstrap:Latent must be at least 1, was {o.Latent}.");
        if (o.LatentComponents is < 1 or > 64) f.Add($"Bootstrap:LatentComponents must be 1 to 64, was {o.LatentComponents}.");
        if (o.LatentFits is < 1 or > 8) f.Add($"Bootstrap:LatentFits must be 1 to 8, was {o.LatentFits}.");
        if (o.Score is not ("reconstruction" or "latent" or "combined")) f.Add($"Bootstrap:Score must be reconstruction, latent or combined, was '{o.Score}'.");
        try { Augmentation.Parse(o.Augment); }
        catch (Exception e) when (e is FormatException or ArgumentException) { f.Add($"Bootstrap:Augment: {e.Message}"); }
        if (!ModelSpec.Architectures.Contains(o.Architecture)) f.Add($"Bootstrap:Architecture must be one of {string.Join(", ", ModelSpec.Architectures)}, was '{o.Architecture}'.");
        if (o.Shape is not null)
        {
            try { ImageShape.Parse(o.Shape); }
            catch (Exception e) when (e is FormatException or ArgumentException) { f.Add($"Bootstrap:Shape: {e.Message}"); }
        }
        if (!string.IsNullOrWhiteSpace(o.Data) && !File.Exists(o.Data) && !Directory.Exists(o.Data) && Path.IsPathRooted(o.Data))
            f.Add($"Bootstrap:Data '{o.Data}' does not exist.");
        return OptionChecks.Result(f);
    }
}
