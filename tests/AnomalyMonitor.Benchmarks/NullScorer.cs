using AnomalyMonitor.Core.Imaging;
using AnomalyMonitor.Core.Scoring;
using AnomalyMonitor.Core.Storage;
using AnomalyMonitor.Pipeline;
using AnomalyMonitor.Pipeline.Scoring;

namespace AnomalyMonitor.Benchmarks;

/// <summary>
/// Benchmark only: a scorer without a model, so that the pipeline benchmark measures the ceiling of the
/// service's own path (receive, decode, batch, judge, record, acknowledge). Its score is each image's mean
/// pixel, which reads every pixel the decoder wrote and gives the judge a real distribution.
/// </summary>
internal sealed class NullScorer(ImageShape shape) : IBatchScorer
{
    public ImageShape Shape => shape;
    public string Kind => "reconstruction";

    public void Score(Batch batch, ScoreOutput output)
    {
        for (int i = 0; i < batch.Count; i++)
        {
            var pixels = batch.Slot(i);
            float sum = 0;
            foreach (var p in pixels) sum += p;
            output.Errors[i] = output.ReconstructionErrors[i] = 1e-3f + sum / pixels.Length;
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
