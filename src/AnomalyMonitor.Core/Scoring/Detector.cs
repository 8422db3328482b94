namespace AnomalyMonitor.Core.Scoring;

/// <summary>What an image's anomaly score is made of.</summary>
public enum ScoreKind
{
    /// <summary>The mean per-pixel reconstruction error (the worksheets' score).</summary>
    Reconstruction,
    /// <summary>The code's squared Mahalanobis distance under a Gaussian fitted to the normal training codes, over its dimensions.</summary>
    Latent,
    /// <summary>exp of the mean of both, each taken in log and standardised on the held-out normals (LSA's sum, in z units).</summary>
    Combined,
}

/// <summary>Log-space mean and σ of each part on the held-out normals, to put them on one scale for the combined score.</summary>
public sealed record ScoreNormalization(double ReconstructionLogMean, double ReconstructionLogStd, double LatentLogMean, double LatentLogStd);

/// <summary>
/// How a model scores an image: the kind, and what was fitted after training to compute it. With a
/// <see cref="Mixture"/> the latent score is the mixture's (the single Gaussian is kept beside it).
/// </summary>
public sealed record Detector(ScoreKind Score, LatentGaussian? Latent = null, ScoreNormalization? Normalization = null, LatentMixture? Mixture = null)
{
    public static readonly Detector Reconstruction = new(ScoreKind.Reconstruction);

    public bool UsesLatent => Score != ScoreKind.Reconstruction;

    /// <summary>Each row's latent score: the mixture's when there is one, else the single Gaussian's.</summary>
    public TorchSharp.torch.Tensor LatentScore(TorchSharp.torch.Tensor codes, TorchSharp.torch.Device device) =>
        Mixture is { } mixture ? mixture.Score(codes, device) : Latent!.Score(codes, device);

    public static string Name(ScoreKind kind) => kind switch
    {
        ScoreKind.Latent => "latent",
        ScoreKind.Combined => "combined",
        _ => "reconstruction",
    };

    public static ScoreKind Parse(string text) => text.Trim().ToLowerInvariant() switch
    {
        "reconstruction" or "recon" => ScoreKind.Reconstruction,
        "latent" or "latent-gauss" => ScoreKind.Latent,
        "combined" => ScoreKind.Combined,
        _ => throw new FormatException($"Score '{text}' is not reconstruction, latent or combined."),
    };

    /// <summary>The problems that keep this detector from scoring; empty when it can.</summary>
    public IEnumerable<string> Problems()
    {
        if (UsesLatent && Latent is null) yield return $"a {Name(Score)} score needs a fitted latent density";
        if (Score == ScoreKind.Combined && Normalization is null) yield return "a combined score needs its normalisation";
    }
}
