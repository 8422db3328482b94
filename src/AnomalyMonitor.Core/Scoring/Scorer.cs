using AnomalyMonitor.Core.Data;
using AnomalyMonitor.Core.Imaging;
using AnomalyMonitor.Core.Models;
using AnomalyMonitor.Core.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace AnomalyMonitor.Core.Scoring;

/// <summary>Per-image output of a scoring call; reconstructions and error maps only when asked for.</summary>
public sealed class ScoreOutput(int count, ImageShape shape, bool detailed)
{
    /// <summary>The anomaly score the detector judges by (the reconstruction error for a reconstruction detector).</summary>
    public float[] Errors { get; } = new float[count];
    /// <summary>
    /// The mean per-pixel reconstruction error. A latent score needs only the encoder, so unless the output
    /// is detailed (or the score is combined) the decoder does not run and these are NaN.
    /// </summary>
    public float[] ReconstructionErrors { get; } = new float[count];
    /// <summary>The latent score (squared Mahalanobis distance over the dimensions); zero for a reconstruction detector.</summary>
    public float[] LatentScores { get; } = new float[count];
    /// <summary>N x C x H x W reconstructions, or null.</summary>
    public float[]? Reconstructions { get; } = detailed ? new float[count * shape.PixelCount] : null;
    /// <summary>N x H x W per-pixel errors (averaged over channels), or null.</summary>
    public float[]? ErrorMaps { get; } = detailed ? new float[count * shape.Height * shape.Width] : null;
    /// <summary>Which images' reconstructions and error maps the last call filled (a detailed output only).</summary>
    public bool[] Reconstructed { get; } = new bool[count];

    /// <summary>Puts one image's reconstruction, error map and reconstruction error at <paramref name="at"/>, and marks it reconstructed.</summary>
    public void Place(int at, ReadOnlySpan<float> reconstruction, ReadOnlySpan<float> errorMap, float error)
    {
        reconstruction.CopyTo(Reconstructions!.AsSpan(at * reconstruction.Length, reconstruction.Length));
        errorMap.CopyTo(ErrorMaps!.AsSpan(at * errorMap.Length, errorMap.Length));
        ReconstructionErrors[at] = error;
        Reconstructed[at] = true;
    }
}

/// <summary>
/// Runs a trained autoencoder over images in batches under no_grad and returns each image's score:
/// the reconstruction error, the latent score, or both combined, as the model's detector says. Not
/// thread-safe: one scorer per scoring thread.
/// </summary>
public sealed class Scorer
{
    private readonly nn.Module<Tensor, Tensor> _model;
    private readonly Device _device;
    private readonly ImageShape _shape;
    private readonly ErrorMetric _metric;
    private readonly Detector _detector;
    // Exact-size staging arrays, one per batch size seen: torch.tensor needs an array of exactly N*C*H*W.
    private readonly Dictionary<int, float[]> _staging = [];

    public Scorer(nn.Module<Tensor, Tensor> model, Device device, ImageShape shape, ErrorMetric metric, Detector? detector = null)
    {
        _model = model;
        _device = device;
        _shape = shape;
        _metric = metric;
        _detector = detector ?? Detector.Reconstruction;
        var problems = _detector.Problems().ToList();
        if (_detector.UsesLatent && model is not IAutoencoder) problems.Add($"a {Detector.Name(_detector.Score)} score needs an autoencoder with a readable code (conv or dense)");
        if (problems.Count > 0) throw new ArgumentException($"This model cannot score: {string.Join("; ", problems)}.");
    }

    public ImageShape Shape => _shape;
    public ErrorMetric Metric => _metric;
    public Detector Detector => _detector;

    public float[] Score(ImageSet images, int batchSize = 64, CancellationToken cancellationToken = default) =>
        Score(images, 0, images.Count, detailed: false, batchSize, cancellationToken).Errors;

    public ScoreOutput Score(ImageSet images, int start, int count, bool detailed, int batchSize = 64, CancellationToken cancellationToken = default)
    {
        var output = new ScoreOutput(count, _shape, detailed);
        for (int offset = 0; offset < count; offset += batchSize)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int n = Math.Min(batchSize, count - offset);
            ScoreBatch(images.Pixels.AsSpan((start + offset) * _shape.PixelCount, n * _shape.PixelCount), n, output, offset);
        }
        return output;
    }

    /// <summary>Scores <paramref name="count"/> images laid out back to back, writing results at <paramref name="outputOffset"/>.</summary>
    public void ScoreBatch(ReadOnlySpan<float> pixels, int count, ScoreOutput output, int outputOffset = 0)
    {
        if (!_staging.TryGetValue(count, out var staging))
            _staging[count] = staging = new float[count * _shape.PixelCount];
        pixels[..staging.Length].CopyTo(staging);

        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        ScoreTensor(tensor(staging, [count, _shape.Channels, _shape.Height, _shape.Width]), count, output, outputOffset, output.Reconstructions is not null);
    }

    /// <summary>
    /// Scores N x C x H x W images already in a tensor (a batch's own buffer, read in place), writing results at
    /// <paramref name="outputOffset"/>. With <paramref name="reconstruct"/>, reconstructions and error maps too
    /// (the output must be detailed). Call inside a dispose scope and no_grad.
    /// </summary>
    /// <param name="reconstructAbove">
    /// A latent score that skips the decoder still decodes, from the codes it has, the images scoring above this (or
    /// not finite): the ones likely to be judged anomalies, whose evidence needs their reconstruction. Done here, on
    /// the thread that scores, it costs no second encoder pass and no serial pass on the thread that judges.
    /// </param>
    public void ScoreTensor(Tensor images, int count, ScoreOutput output, int outputOffset, bool reconstruct, float reconstructAbove = float.PositiveInfinity)
    {
        var input = images.device == _device ? images : images.to(_device, non_blocking: true);
        Tensor? reconstruction;
        Tensor latent;
        Tensor? code = null;
        if (_detector.UsesLatent)
        {
            var autoencoder = (IAutoencoder)_model;
            code = autoencoder.Encode(input);
            latent = _detector.LatentScore(code, _device);
            // The decoder is most of the model's cost: a latent score runs it only when a reconstruction is asked for.
            reconstruction = reconstruct || _detector.Score == ScoreKind.Combined ? autoencoder.Decode(code) : null;
        }
        else
        {
            reconstruction = _model.forward(input);
            latent = zeros(count, device: _device);
        }
        if (reconstruction is null)
        {
            HostCopy.To(latent, output.Errors, outputOffset);
            HostCopy.To(latent, output.LatentScores, outputOffset);
            Array.Fill(output.ReconstructionErrors, float.NaN, outputOffset, count);
            Array.Fill(output.Reconstructed, false, outputOffset, count);
            if (output.Reconstructions is not null && !float.IsPositiveInfinity(reconstructAbove))
                DecodeAbove((IAutoencoder)_model, code!, input, output.Errors.AsSpan(outputOffset, count), reconstructAbove, output, outputOffset);
            return;
        }
        var perPixel = PerPixelError(reconstruction, input, _metric);
        var error = perPixel.mean([1, 2, 3]);
        var score = _detector.Score switch
        {
            ScoreKind.Latent => latent,
            ScoreKind.Combined => Combine(error, latent, _detector.Normalization!),
            _ => error,
        };
        HostCopy.To(score, output.Errors, outputOffset);
        HostCopy.To(error, output.ReconstructionErrors, outputOffset);
        HostCopy.To(latent, output.LatentScores, outputOffset);
        if (reconstruct) CopyEvidence(reconstruction, perPixel, output, outputOffset);
        Array.Fill(output.Reconstructed, reconstruct && output.Reconstructions is not null, outputOffset, count);
    }

    /// <summary>Decodes the codes of the images whose score is above <paramref name="cutoff"/> (or not finite), into the output at their places.</summary>
    private void DecodeAbove(IAutoencoder autoencoder, Tensor code, Tensor input, ReadOnlySpan<float> scores, float cutoff, ScoreOutput output, int outputOffset)
    {
        var rows = new List<long>();
        for (int i = 0; i < scores.Length; i++)
            if (!(scores[i] <= cutoff)) rows.Add(i);
        if (rows.Count == 0) return;
        using var which = tensor(rows.ToArray(), device: _device);
        var selected = input.index_select(0, which);
        var reconstruction = autoencoder.Decode(code.index_select(0, which));
        var perPixel = PerPixelError(reconstruction, selected, _metric);
        var errors = HostCopy.ToArray(perPixel.mean([1, 2, 3]));
        var pixels = HostCopy.ToArray(reconstruction);
        var maps = HostCopy.ToArray(perPixel.mean([1]));
        int size = _shape.PixelCount, plane = _shape.Height * _shape.Width;
        for (int k = 0; k < rows.Count; k++)
            output.Place(outputOffset + (int)rows[k], pixels.AsSpan(k * size, size), maps.AsSpan(k * plane, plane), errors[k]);
    }

    /// <summary>
    /// Reconstructions, error maps and reconstruction errors of N x C x H x W images already in a tensor, for evidence:
    /// the score was taken already, so the latent density is not evaluated again. Call inside a dispose scope and no_grad.
    /// </summary>
    public void Reconstruct(Tensor images, int count, ScoreOutput output, int outputOffset)
    {
        if (output.Reconstructions is null) throw new ArgumentException("Reconstructing needs a detailed output.", nameof(output));
        var input = images.device == _device ? images : images.to(_device, non_blocking: true);
        var reconstruction = _model is IAutoencoder autoencoder ? autoencoder.Decode(autoencoder.Encode(input)) : _model.forward(input);
        var perPixel = PerPixelError(reconstruction, input, _metric);
        HostCopy.To(perPixel.mean([1, 2, 3]), output.ReconstructionErrors, outputOffset);
        CopyEvidence(reconstruction, perPixel, output, outputOffset);
        Array.Fill(output.Reconstructed, true, outputOffset, count);
    }

    /// <summary>The reconstructions and their channel-mean error maps, into a detailed output (a summary one has no room).</summary>
    private void CopyEvidence(Tensor reconstruction, Tensor perPixel, ScoreOutput output, int outputOffset)
    {
        if (output.Reconstructions is not { } recon) return;
        HostCopy.To(reconstruction, recon, outputOffset * _shape.PixelCount);
        HostCopy.To(perPixel.mean([1]), output.ErrorMaps!, outputOffset * _shape.Height * _shape.Width);
    }

    /// <summary>exp(mean of the two standardised log parts): positive, so the judge can take its log like any error's.</summary>
    internal static Tensor Combine(Tensor error, Tensor latent, ScoreNormalization n)
    {
        var r = (error.clamp_min(1e-12).log() - n.ReconstructionLogMean) / n.ReconstructionLogStd;
        var l = (latent.clamp_min(1e-12).log() - n.LatentLogMean) / n.LatentLogStd;
        return ((r + l) / 2).exp();
    }

    internal static Tensor PerPixelError(Tensor reconstruction, Tensor target, ErrorMetric metric) => metric switch
    {
        ErrorMetric.Bce => nn.functional.binary_cross_entropy(reconstruction, target, reduction: nn.Reduction.None),
        _ => (reconstruction - target).square(),
    };
}
