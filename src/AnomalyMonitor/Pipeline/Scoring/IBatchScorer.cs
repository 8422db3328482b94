using AnomalyMonitor.Core.Imaging;
using AnomalyMonitor.Core.Scoring;
using AnomalyMonitor.Core.Storage;

namespace AnomalyMonitor.Pipeline.Scoring;

/// <summary>
/// Scores batches for the scoring thread: owns the model on its device, torch's threads for scoring and
/// its output buffers. Score fills every image's score; Reconstruct adds reconstructions and error maps
/// for a few (the anomalies, for their evidence), so that a latent detector runs its decoder only for those.
/// </summary>
public interface IBatchScorer : IDisposable
{
    ImageShape Shape { get; }

    /// <summary>"reconstruction", "latent" or "combined".</summary>
    string Kind { get; }

    /// <summary>Scores every image of the batch into output's Errors, ReconstructionErrors and LatentScores.</summary>
    void Score(Batch batch, ScoreOutput output);

    /// <summary>Reconstructions and error maps of the images at <paramref name="indices"/>, into output at the same indices.</summary>
    void Reconstruct(Batch batch, IReadOnlyList<int> indices, ScoreOutput output);
}

/// <summary>Makes the scorer for a loaded model (the benchmarks swap in one without a model, to measure the path alone).</summary>
public interface IBatchScorerFactory
{
    IBatchScorer Create(LoadedModel model);
}
