using AnomalyMonitor.Core.Imaging;
using AnomalyMonitor.Core.Scoring;
using AnomalyMonitor.Core.Storage;
using static TorchSharp.torch;

namespace AnomalyMonitor.Pipeline.Scoring;

/// <summary>
/// The TorchSharp scorer. The batch's pinned buffer is the model's input as it stands (on the CPU, a view;
/// on CUDA, copied to the device without blocking, while the decoders fill the next batch). Every batch
/// runs in a dispose scope under no_grad.
/// </summary>
public sealed class TorchBatchScorer(LoadedModel model) : IBatchScorer
{
    private readonly Scorer _scorer = model.CreateScorer();
    private readonly bool _reconstructs = model.Detector.Score == ScoreKind.Reconstruction;
    private ScoreOutput? _subset;

    public ImageShape Shape => model.Shape;
    public string Kind => Detector.Name(model.Detector.Score);

    public void Score(Batch batch, ScoreOutput output, float reconstructAbove)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        // A reconstruction score computes the reconstruction anyway: keep it, instead of a second pass for the anomalies.
        // A latent score decodes, from the codes it has, only what scores above the cut: the likely anomalies.
        _scorer.ScoreTensor(batch.View(), batch.Count, output, 0, reconstruct: _reconstructs, reconstructAbove);
    }

    public void Reconstruct(Batch batch, IReadOnlyList<int> anomalies, ScoreOutput output)
    {
        if (_reconstructs) return;
        // Decoded while scoring but judged normal (the threshold moved since): reported as for any normal, without one.
        for (int i = 0; i < batch.Count; i++)
        {
            if (!output.Reconstructed[i] || anomalies.Contains(i)) continue;
            output.Reconstructed[i] = false;
            output.ReconstructionErrors[i] = float.NaN;
        }
        if (anomalies.Count == 0) return; // most batches: no list to build
        var missing = anomalies.Where(i => !output.Reconstructed[i]).ToList();
        if (missing.Count == 0) return;
        _subset = _subset is { } s && s.Errors.Length >= missing.Count ? s : new ScoreOutput(batch.Capacity, batch.Shape, detailed: true);
        using (var scope = NewDisposeScope())
        using (var noGrad = no_grad())
        {
            using var which = tensor(missing.Select(i => (long)i).ToArray());
            _scorer.Reconstruct(batch.View().index_select(0, which), missing.Count, _subset, 0);
        }
        int size = batch.Shape.PixelCount, plane = batch.Shape.Height * batch.Shape.Width;
        for (int k = 0; k < missing.Count; k++)
            output.Place(missing[k], _subset.Reconstructions.AsSpan(k * size, size), _subset.ErrorMaps.AsSpan(k * plane, plane), _subset.ReconstructionErrors[k]);
    }

    public void Dispose()
    {
    }
}

public sealed class TorchBatchScorerFactory : IBatchScorerFactory
{
    public IBatchScorer Create(LoadedModel model) => new TorchBatchScorer(model);
}
