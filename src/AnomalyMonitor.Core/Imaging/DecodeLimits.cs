namespace AnomalyMonitor.Core.Imaging;

/// <summary>Bounds that keep one hostile or broken input from exhausting memory.</summary>
public sealed record DecodeLimits
{
    public static readonly DecodeLimits Default = new();

    /// <summary>Largest encoded file accepted, in bytes.</summary>
    public long MaxBytes { get; init; } = 64L * 1024 * 1024;

    /// <summary>Largest decoded image accepted, in pixels (width x height).</summary>
    public long MaxPixels { get; init; } = 40_000_000;

    /// <summary>
    /// Largest data one batch file may hold once uncompressed (a gzipped IDX, the arrays of an .npz, one .npy),
    /// in bytes; 0: MaxPixels × 16, what the command line allows for whole datasets. A decoder holds that data
    /// and its float pixels (4 bytes each) at once, so this bounds its memory.
    /// </summary>
    public long MaxExpandedBytes { get; init; }

    /// <summary>What <see cref="MaxExpandedBytes"/> comes to.</summary>
    public long ExpansionCap => MaxExpandedBytes > 0 ? MaxExpandedBytes : Math.Max(MaxBytes, MaxPixels * 16);

    /// <summary>When false, an image whose size differs from the model input is rejected rather than resized.</summary>
    public bool AllowResize { get; init; } = true;
}
