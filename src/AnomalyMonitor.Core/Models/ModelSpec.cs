using AnomalyMonitor.Core.Imaging;

namespace AnomalyMonitor.Core.Models;

/// <summary>Which autoencoder, for which input, with which bottleneck. Enough to rebuild the module before loading weights.</summary>
public sealed record ModelSpec(string Architecture, ImageShape Shape, int Latent)
{
    public const string Conv = "conv";
    public const string ConvPool = "conv-pool";
    public const string Dense = "dense";
    public const string ConvDeep = "conv-deep";

    public static readonly IReadOnlyList<string> Architectures = [Conv, ConvPool, Dense, ConvDeep];

    /// <summary>The worksheets' bottlenecks: 16 for the strided conv AE, 64 for the dense AE (conv-pool has none).</summary>
    public static int DefaultLatent(string architecture) => architecture == Dense ? 64 : 16;

    public static ModelSpec Create(string architecture, ImageShape shape, int? latent = null) =>
        new(architecture, shape, latent ?? DefaultLatent(architecture));

    public IEnumerable<string> Problems()
    {
        if (!Architectures.Contains(Architecture))
            yield return $"architecture '{Architecture}' is unknown; choose one of {string.Join(", ", Architectures)}";
        foreach (var p in Shape.Problems()) yield return p;
        if (Latent < 1)
            yield return $"latent size must be at least 1, was {Latent}";
    }
}
