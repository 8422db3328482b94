using AnomalyMonitor.Core.Scoring;

namespace AnomalyMonitor.Core.Training;

public sealed record TrainingOptions
{
    public int Epochs { get; init; } = 20;
    /// <summary>
    /// The optimizer steps the run may take at least: a small set gets more epochs (a thousand images are
    /// eight steps an epoch), so the budget is max(Epochs, MinSteps / steps per epoch) epochs. Early
    /// stopping still ends a run whose validation loss has stopped improving. 0 counts epochs only.
    /// </summary>
    public int MinSteps { get; init; }
    public int BatchSize { get; init; } = 128;
    public double LearningRate { get; init; } = 1e-3;
    public LossKind Loss { get; init; } = LossKind.Bce;
    /// <summary>Fraction held out for validation loss, early stopping and calibration.</summary>
    public double ValidationSplit { get; init; } = 0.1;
    /// <summary>
    /// ...but at least this many, up to a quarter of the images: the conformal rule wants 1,000 held-out
    /// scores, and the rolling judge's tail correction reads the calibration's tail. 0 keeps the fraction.
    /// </summary>
    public int MinValidation { get; init; } = 1000;

    /// <summary>How many of <paramref name="count"/> images are held out.</summary>
    public int ValidationCount(int count)
    {
        if (ValidationSplit <= 0 || count < 2) return 0;
        int share = (int)Math.Round(count * ValidationSplit);
        return Math.Clamp(Math.Max(share, Math.Min(MinValidation, count / 4)), 1, count - 1);
    }
    public bool Shuffle { get; init; } = true;
    /// <summary>Seeds Torch and the shuffling for a reproducible run on the CPU. Null: a fresh seed.</summary>
    public int? Seed { get; init; }
    /// <summary>Epochs without a better validation loss before stopping; 0 turns early stopping off. The best weights are kept either way.</summary>
    public int Patience { get; init; } = 5;

    /// <summary>
    /// A validation loss counts as an improvement for early stopping only if it beats the best by this
    /// fraction (0.1%): a loss that keeps creeping down by rounding-sized steps has converged. The best
    /// weights are kept on any improvement.
    /// </summary>
    public double MinImprovement { get; init; } = 1e-3;

    public static int StepsPerEpoch(int trainImages, int batchSize) => Math.Max(1, (trainImages + batchSize - 1) / batchSize);

    /// <summary>
    /// Patience in epochs for this many training images. When the step budget stretches the run past Epochs,
    /// patience stretches by the same factor: five epochs of a thousand images are thirty steps, and the
    /// validation loss of a small, augmented set wanders for longer than that while it still falls (a cold
    /// start stopped after 41 s with 91% recall where the full budget gave 97%).
    /// </summary>
    public int PatienceEpochs(int trainImages)
    {
        if (Patience <= 0) return 0;
        int budget = EpochBudget(trainImages);
        return budget <= Epochs ? Patience : (int)Math.Ceiling(Patience * (double)budget / Math.Max(1, Epochs));
    }

    /// <summary>How many epochs the run may take, for this many training images (after the validation split).</summary>
    public int EpochBudget(int trainImages)
    {
        int steps = StepsPerEpoch(trainImages, BatchSize);
        return Math.Max(Epochs, (MinSteps + steps - 1) / steps);
    }

    public NoiseSpec Noise { get; init; } = NoiseSpec.None;
    /// <summary>Restoration training: each input turned and moved a little, the upright original the target.</summary>
    public Augmentation Augmentation { get; init; } = Augmentation.None;
    /// <summary>What the trained model scores by; a latent or combined score fits a Gaussian to the training codes after training.</summary>
    public ScoreKind Score { get; init; } = ScoreKind.Reconstruction;
    /// <summary>Shrinkage of the latent covariance towards its average variance.</summary>
    public double LatentShrinkage { get; init; } = 0.01;
    /// <summary>Gaussians in the latent density: 1 is the single Gaussian; more fit a mixture (LatentMixture) beside it.</summary>
    public int LatentComponents { get; init; } = 1;
    /// <summary>
    /// Mixture fits pooled into the latent density, each from its own k-means seed (LatentMixture.Pool): on a
    /// small sample one seed's luck moves recall at 1% false alarms by ten points. 1 fits once.
    /// </summary>
    public int LatentFits { get; init; } = 1;
    /// <summary>
    /// Fit the latent density on the held-out codes too, not only the training ones: the autoencoder never
    /// trained on them, as on no image it will judge, so they widen the density where unseen normals land.
    /// The calibration stays out of sample by cross-fitting: each fifth of the held-out images is scored by a
    /// density fitted without it.
    /// </summary>
    public bool LatentHeldOut { get; init; }

    /// <summary>
    /// The options a model was trained with, as far as they shape the next model of its line (retraining):
    /// loss, restoration moves, score and latent density. Budgets (epochs, steps) are the caller's.
    /// </summary>
    public static TrainingOptions Like(Storage.ModelManifest manifest) => new()
    {
        Loss = manifest.Loss,
        Noise = NoiseSpec.Parse(manifest.Training.Noise),
        Augmentation = manifest.Training.Augmentation is { } a ? Augmentation.Parse(a) : Augmentation.None,
        Score = manifest.Detector?.Score ?? ScoreKind.Reconstruction,
        LatentComponents = manifest.Training.LatentComponents ?? manifest.Detector?.Mixture?.Components ?? 1,
        LatentFits = manifest.Training.LatentFits ?? 1,
        LatentHeldOut = manifest.Training.LatentHeldOut ?? false,
        ValidationSplit = manifest.Training.ValidationSplit,
    };

    public IEnumerable<string> Problems()
    {
        if (Epochs < 1) yield return $"epochs must be at least 1, was {Epochs}";
        if (MinSteps < 0) yield return $"min steps must be 0 (off) or more, was {MinSteps}";
        if (BatchSize < 1) yield return $"batch size must be at least 1, was {BatchSize}";
        if (LearningRate is <= 0 or > 1) yield return $"learning rate must be in (0, 1], was {LearningRate}";
        if (ValidationSplit is < 0 or >= 1) yield return $"validation split must be in [0, 1), was {ValidationSplit}";
        if (Patience < 0) yield return $"patience must be 0 (off) or more, was {Patience}";
        if (LatentComponents is < 1 or > 64) yield return $"latent components must be 1 to 64, was {LatentComponents}";
        if (LatentFits is < 1 or > 8) yield return $"latent fits must be 1 to 8, was {LatentFits}";
        if (MinValidation < 0) yield return $"minimum validation count must be 0 or more, was {MinValidation}";
        if (MinImprovement is < 0 or >= 1) yield return $"minimum improvement must be in [0, 1), was {MinImprovement}";
    }
}

/// <summary>One epoch's losses, as kept in the manifest's history; Steps counts optimizer steps so far, Of the epochs planned.</summary>
public sealed record EpochReport(int Epoch, double Loss, double? ValidationLoss, double Seconds, bool Best, int Steps = 0, int Of = 0);
