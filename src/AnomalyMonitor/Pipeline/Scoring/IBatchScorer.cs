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

    /// <summary>
    /// Scores every image of the batch into output's Errors, ReconstructionErrors and LatentScores. A scorer that
    /// reconstructs only some images may reconstruct, in the same pass, those scoring above
    /// <paramref name="reconstructAbove"/> (the threshold as it stood; +∞ for none), marking them in Reconstructed.
    /// </summary>
    void Score(Batch batch, ScoreOutput output, float reconstructAbove);

    /// <summary>
    /// After judging: reconstructions and error maps for the images at <paramref name="anomalies"/> (those the score
    /// pass did not reconstruct), into output at the same indices, and none kept for the others.
    /// </summary>
    void Reconstruct(Batch batch, IReadOnlyList<int> anomalies, ScoreOutput output);
}

/// <summary>Makes the scorer for a loaded model (the benchmarks swap in one without a model, to measure the path alone).</summary>
public interface IBatchScorerFactory
{
    IBatchScorer Create(LoadedModel model);
}
