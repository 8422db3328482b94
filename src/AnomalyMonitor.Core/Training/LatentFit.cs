using AnomalyMonitor.Core.Scoring;
using static TorchSharp.torch;

namespace AnomalyMonitor.Core.Training;

/// <summary>
/// Fits the latent density a detector scores by, on N x d codes laid out row after row: one Gaussian, and a
/// mixture pooled over <see cref="TrainingOptions.LatentFits"/> k-means seeds when the sample carries more than
/// one component. With the held-out codes in the fit, their scores come from cross-fitting, so that the
/// calibration never sees a density fitted on the very codes it scores.
/// </summary>
public static class LatentFit
{
    /// <summary>Folds of the held-out codes: each is scored by a density fitted on the training codes and the other folds.</summary>
    public const int Folds = 5;

    /// <summary>The density of N x d codes; <paramref name="components"/> overrides the count the sample carries.</summary>
    public static Detector Fit(float[] codes, int dimensions, TrainingOptions options, int? components = null)
    {
        int count = codes.Length / dimensions;
        var latent = LatentGaussian.Fit(codes, count, dimensions, options.LatentShrinkage);
        components ??= Trainer.Components(options.LatentComponents, count, dimensions);
        if (components < 2) return new Detector(options.Score, latent);
        using var bank = tensor(codes, [count, dimensions]);
        int seed = options.Seed ?? 1;
        var fits = Enumerable.Range(0, options.LatentFits)
            .Select(i => LatentMixture.Fit(bank, components.Value, options.LatentShrinkage, seed: seed + i))
            .ToList();
        return new Detector(options.Score, latent, Mixture: LatentMixture.Pool(fits));
    }

    /// <summary>
    /// The density fitted on the training and held-out codes together, and each held-out code's latent score
    /// under a density fitted without its fold (held-out code i is in fold i mod <see cref="Folds"/>).
    /// </summary>
    public static (Detector Detector, float[] HeldOutScores) CrossFit(float[] train, float[] heldOut, int dimensions, TrainingOptions options)
    {
        if (heldOut.Length < dimensions) throw new ArgumentException("Cross-fitting needs at least one held-out code.", nameof(heldOut));
        // The folds fit as many components as the final density, though each has a fifth fewer codes: the
        // calibration must describe the density the model judges with.
        int components = Trainer.Components(options.LatentComponents, (train.Length + heldOut.Length) / dimensions, dimensions);
        var detector = Fit([.. train, .. heldOut], dimensions, options, components);
        int held = heldOut.Length / dimensions;
        int folds = Math.Min(Folds, held);
        var scores = new float[held];
        for (int fold = 0; fold < folds; fold++)
        {
            var inFold = Enumerable.Range(0, held).Where(i => i % folds == fold).ToArray();
            var rest = new List<float>(train);
            for (int i = 0; i < held; i++)
                if (i % folds != fold) rest.AddRange(heldOut.AsSpan(i * dimensions, dimensions));
            // Only at d = 1 can a fold's codes fall below the two per component a fit needs.
            var without = Fit([.. rest], dimensions, options, Math.Min(components, rest.Count / dimensions / 2));
            var foldCodes = inFold.SelectMany(i => heldOut.AsSpan(i * dimensions, dimensions).ToArray()).ToArray();
            float[] foldScores;
            using (NewDisposeScope())
            {
                try
                {
                    foldScores = without.LatentScore(tensor(foldCodes, [inFold.Length, dimensions]), CPU).data<float>().ToArray();
                }
                finally
                {
                    // A fold's density scores once: its tensors, laid out beyond every scope, go with it.
                    without.Mixture?.ReleaseScoringTensors();
                }
            }
            for (int j = 0; j < inFold.Length; j++) scores[inFold[j]] = foldScores[j];
        }
        return (detector, scores);
    }
}
