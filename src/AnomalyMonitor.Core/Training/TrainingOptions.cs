using AnomalyMonitor.Core.Scoring;

namespace AnomalyMonitor.Core.Training;

public sealed record TrainingOptions
{
    public int Epochs { get; init; } = 20;
    public int BatchSize { get; init; } = 128;
    public double LearningRate { get; init; } = 1e-3;
    public LossKind Loss { get; init; } = LossKind.Bce;
    /// <summary>Fraction held out for validation loss, early stopping and calibration.</summary>
    public double ValidationSplit { get; init; } = 0.1;
    public bool Shuffle { get; init; } = true;
    /// <summary>Seeds Torch and the shuffling for a reproducible run on the CPU. Null: a fresh seed.</summary>
    public int? Seed { get; init; }
    /// <summary>Epochs without a better validation loss before stopping; 0 turns early stopping off. The best weights are kept either way.</summary>
    public int Patience { get; init; } = 5;
    public NoiseSpec Noise { get; init; } = NoiseSpec.None;

    public IEnumerable<string> Problems()
    {
        if (Epochs < 1) yield return $"epochs must be at least 1, was {Epochs}";
        if (BatchSize < 1) yield return $"batch size must be at least 1, was {BatchSize}";
        if (LearningRate is <= 0 or > 1) yield return $"learning rate must be in (0, 1], was {LearningRate}";
        if (ValidationSplit is < 0 or >= 1) yield return $"validation split must be in [0, 1), was {ValidationSplit}";
        if (Patience < 0) yield return $"patience must be 0 (off) or more, was {Patience}";
    }
}

/// <summary>One epoch's losses, as kept in the manifest's history.</summary>
public sealed record EpochReport(int Epoch, double Loss, double? ValidationLoss, double Seconds, bool Best);
