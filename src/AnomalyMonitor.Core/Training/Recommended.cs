using AnomalyMonitor.Core.Models;
using AnomalyMonitor.Core.Scoring;

namespace AnomalyMonitor.Core.Training;

/// <summary>
/// The default detector of `train` and of the service's first model: the strided conv autoencoder with a
/// 64-wide code, trained 40 epochs to restore images turned up to 15° and moved up to 2 pixels, scoring
/// by the code's negative log-likelihood under a mixture of Gaussians. Chosen by validation AUROC on held-out classes of the training
/// split only (MNIST and Fashion-MNIST; docs/benchmarks.md, "How the default detector was chosen"). The
/// worksheet models stay one option away: --latent 16 --score reconstruction --augment none.
/// </summary>
public static class Recommended
{
    public const string Architecture = ModelSpec.Conv;
    public const int Epochs = 40;
    public const ScoreKind Score = ScoreKind.Latent;
    public const string AugmentationText = "affine:rot=15,shift=2";
    public static Augmentation Augmentation => Augmentation.Parse(AugmentationText);
    /// <summary>
    /// A mixture of 5 Gaussians on the code: the count with the best validation AUROC averaged over both data
    /// sets' hard classes (MNIST +2.0 points, Fashion-MNIST −0.3; docs/benchmarks.md, 2b). A small sample fits
    /// fewer (<see cref="Trainer.Components"/>).
    /// </summary>
    public const int LatentComponents = 5;

    /// <summary>64 for the conv encoders (validation preferred it to the worksheet's 16 and to 128); the worksheet's own size otherwise.</summary>
    public static int Latent(string architecture) => architecture is ModelSpec.Conv or ModelSpec.ConvDeep ? 64 : ModelSpec.DefaultLatent(architecture);
}
