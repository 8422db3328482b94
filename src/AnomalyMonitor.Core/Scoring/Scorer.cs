using AnomalyMonitor.Core.Data;
using AnomalyMonitor.Core.Imaging;
using TorchSharp;
using static TorchSharp.torch;

namespace AnomalyMonitor.Core.Scoring;

/// <summary>Per-image output of a scoring call; reconstructions and error maps only when asked for.</summary>
public sealed class ScoreOutput(int count, ImageShape shape, bool detailed)
{
    public float[] Errors { get; } = new float[count];
    /// <summary>N x C x H x W reconstructions, or null.</summary>
    public float[]? Reconstructions { get; } = detailed ? new float[count * shape.PixelCount] : null;
    /// <summary>N x H x W per-pixel errors (averaged over channels), or null.</summary>
    public float[]? ErrorMaps { get; } = detailed ? new float[count * shape.Height * shape.Width] : null;
}

/// <summary>
/// Runs a trained autoencoder over images in batches under no_grad and returns each image's
/// reconstruction error. Not thread-safe: one scorer per scoring thread.
/// </summary>
public sealed class Scorer(nn.Module<Tensor, Tensor> model, Device device, ImageShape shape, ErrorMetric metric)
{
    // Exact-size staging arrays, one per batch size seen: torch.tensor needs an array of exactly N*C*H*W.
    private readonly Dictionary<int, float[]> _staging = [];

    public ImageShape Shape => shape;
    public ErrorMetric Metric => metric;

    public float[] Score(ImageSet images, int batchSize = 64, CancellationToken cancellationToken = default) =>
        Score(images, 0, images.Count, detailed: false, batchSize, cancellationToken).Errors;

    public ScoreOutput Score(ImageSet images, int start, int count, bool detailed, int batchSize = 64, CancellationToken cancellationToken = default)
    {
        var output = new ScoreOutput(count, shape, detailed);
        for (int offset = 0; offset < count; offset += batchSize)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int n = Math.Min(batchSize, count - offset);
            ScoreBatch(images.Pixels.AsSpan((start + offset) * shape.PixelCount, n * shape.PixelCount), n, output, offset);
        }
        return output;
    }

    /// <summary>Scores <paramref name="count"/> images laid out back to back, writing results at <paramref name="outputOffset"/>.</summary>
    public void ScoreBatch(ReadOnlySpan<float> pixels, int count, ScoreOutput output, int outputOffset = 0)
    {
        if (!_staging.TryGetValue(count, out var staging))
            _staging[count] = staging = new float[count * shape.PixelCount];
        pixels[..staging.Length].CopyTo(staging);

        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var input = tensor(staging, [count, shape.Channels, shape.Height, shape.Width]).to(device);
        var reconstruction = model.forward(input);
        var perPixel = PerPixelError(reconstruction, input, metric);
        perPixel.mean([1, 2, 3]).cpu().data<float>().CopyTo(output.Errors, outputOffset);
        if (output.Reconstructions is { } recon)
        {
            reconstruction.cpu().data<float>().CopyTo(recon, outputOffset * shape.PixelCount);
            perPixel.mean([1]).cpu().data<float>().CopyTo(output.ErrorMaps!, outputOffset * shape.Height * shape.Width);
        }
    }

    internal static Tensor PerPixelError(Tensor reconstruction, Tensor target, ErrorMetric metric) => metric switch
    {
        ErrorMetric.Bce => nn.functional.binary_cross_entropy(reconstruction, target, reduction: nn.Reduction.None),
        _ => (reconstruction - target).square(),
    };
}
