namespace AnomalyMonitor.Core.Scoring;

/// <summary>How reconstruction error is measured per image: the mean over pixels of squared error or of binary cross-entropy.</summary>
public enum ErrorMetric
{
    Mse,
    Bce,
}

public enum LossKind
{
    Bce,
    Mse,
}
