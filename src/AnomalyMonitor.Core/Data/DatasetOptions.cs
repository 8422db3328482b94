using AnomalyMonitor.Core.Imaging;

namespace AnomalyMonitor.Core.Data;

public enum DatasetSplit
{
    /// <summary>The training files of an IDX directory or npz archive.</summary>
    Train,
    /// <summary>The test files (t10k-* / x_test).</summary>
    Test,
}

public sealed record DatasetOptions
{
    public DatasetSplit Split { get; init; } = DatasetSplit.Train;

    /// <summary>The model input. Null means: take the size of the data (and 1 or 3 channels from it).</summary>
    public ImageShape? Shape { get; init; }

    /// <summary>When set, only images of this class (number or folder name) are kept.</summary>
    public string? OnlyClass { get; init; }

    /// <summary>When set, at most this many images are kept (the first ones), for quick runs.</summary>
    public int? Limit { get; init; }

    public DecodeLimits Limits { get; init; } = DecodeLimits.Default;
}

/// <summary>What a load produced: the usable images and every input that was refused, with its reason.</summary>
public sealed record DatasetLoadResult(ImageSet Images, IReadOnlyList<InputRejectedException> Rejected, string Description);
