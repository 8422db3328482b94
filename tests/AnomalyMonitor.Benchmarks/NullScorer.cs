using AnomalyMonitor.Core.Imaging;
using AnomalyMonitor.Core.Scoring;
using AnomalyMonitor.Core.Storage;
using AnomalyMonitor.Pipeline;
using AnomalyMonitor.Pipeline.Scoring;

namespace AnomalyMonitor.Benchmarks;

/// <summary>
/// Benchmark only: a scorer without a model, so that the pipeline benchmark measures the ceiling of the
/// service's own path (receive, decode, batch, judge, record, acknowledge). It reads every pixel the
/// decoder wrote, and tells the benchmark's noise images from its digits by their mean.
/// </summary>
internal sealed class NullScorer(ImageShape shape) : IBatchScorer
{
    public ImageShape Shape => shape;
    public string Kind => "reconstruction";

    public void Score(Batch batch, ScoreOutput output, float reconstructAbove)
    {
        for (int i = 0; i < batch.Count; i++)
        {
            var pixels = batch.Slot(i);
            float sum = 0;
            foreach (var p in pixels) sum += p;
            float mean = sum / pixels.Length;
            // Digits are mostly background (mean well under 0.3), noise is not: a flat score with a little
            // jitter from the pixels for the one, far above it for the other, so anomalies are only the noise.
            output.Errors[i] = output.ReconstructionErrors[i] = mean > 0.3f ? 1f : 0.01f * (1 + 0.05f * ((int)(sum * 1000) % 100 / 100f));
            output.LatentScores[i] = 0;
        }
    }

    public void Reconstruct(Batch batch, IReadOnlyList<int> indices, ScoreOutput output)
    {
        int size = shape.PixelCount, plane = shape.Height * shape.Width;
        foreach (var i in indices)
        {
            batch.Slot(i).CopyTo(output.Reconstructions!.AsSpan(i * size, size));
            output.ErrorMaps!.AsSpan(i * plane, plane).Clear();
        }
    }

    public void Dispose()
    {
    }
}

internal sealed class NullScorerFactory : IBatchScorerFactory
{
    public IBatchScorer Create(LoadedModel model) => new NullScorer(model.Shape);
}
