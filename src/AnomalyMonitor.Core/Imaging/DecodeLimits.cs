namespace AnomalyMonitor.Core.Imaging;

/// <summary>Bounds that keep one hostile or broken input from exhausting memory.</summary>
public sealed record DecodeLimits
{
    public static readonly DecodeLimits Default = new();

    /// <summary>Largest encoded file accepted, in bytes.</summary>
    public long MaxBytes { get; init; } = 64L * 1024 * 1024;

    /// <summary>Largest decoded image accepted, in pixels (width x height).</summary>
    public long MaxPixels { get; init; } = 40_000_000;

    /// <summary>When false, an image whose size differs from the model input is rejected rather than resized.</summary>
    public bool AllowResize { get; init; } = true;
}
