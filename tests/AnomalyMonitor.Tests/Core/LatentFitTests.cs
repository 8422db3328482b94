using AnomalyMonitor.Core.Models;
using AnomalyMonitor.Core.Runtime;
using AnomalyMonitor.Core.Scoring;
using AnomalyMonitor.Core.Data;
using AnomalyMonitor.Core.Training;
using AnomalyMonitor.Tests.Support;
using static TorchSharp.torch;

namespace AnomalyMonitor.Tests.Core;

/// <summary>
/// Pooled mixture fits, and a density fitted on the held-out codes too with the calibration kept out of sample
/// by cross-fitting: the service's cold start fits its first model's density this way.
/// </summary>
[Collection(TorchCollection.Name)]
public sealed class LatentFitTests
{
    public LatentFitTests() => TorchRuntime.EnsureLoaded();

    /// <summary>Codes in two styles at ±3 on the first axis: a mixture of two finds them.</summary>
    private static float[] Codes(int n, int d, int seed) => Synthetic.Codes(n, d, seed, styles: 3);

    private static float[] Scores(Detector detector, float[] codes, int d)
    {
        using var scope = NewDisposeScope();
        return detector.LatentScore(tensor(codes, [codes.Length / d, d]), CPU).data<float>().ToArray();
    }

    /// <summary>The rows of N x d codes at <paramref name="rows"/>, row after row.</summary>
    private static float[] Rows(float[] codes, IEnumerable<int> rows, int d) => [.. rows.SelectMany(i => codes.Skip(i * d).Take(d))];

    /// <summary>What the density without fold <paramref name="fold"/> is fitted on: the training codes and the other folds.</summary>
    private static float[] WithoutFold(float[] train, float[] heldOut, int d, int fold) =>
        [.. train, .. Rows(heldOut, Enumerable.Range(0, heldOut.Length / d).Where(i => i % LatentFit.Folds != fold), d)];

    private static readonly TrainingOptions Options = new() { Score = ScoreKind.Latent, LatentComponents = 2, LatentFits = 3, Seed = 4 };

    [Fact]
    public void Pooled_copies_of_one_fit_score_as_that_fit_and_pooled_seeds_keep_every_component()
    {
        const int d = 6;
        var codes = Codes(300, d, seed: 1);
        using var bank = tensor(codes, [300, d]);
        var one = LatentMixture.Fit(bank, 2, seed: 1);
        var probe = Codes(40, d, seed: 2).Select(v => v * 1.3f).ToArray();
        var alone = Scores(new Detector(ScoreKind.Latent, Mixture: one), probe, d);
        var twice = Scores(new Detector(ScoreKind.Latent, Mixture: LatentMixture.Pool([one, one])), probe, d);
        for (int i = 0; i < alone.Length; i++) Assert.Equal(alone[i], twice[i], Math.Max(1e-4f, alone[i] * 1e-4f));

        var pooled = LatentFit.Fit(codes, d, Options).Mixture!;
        Assert.Equal(2 * Options.LatentFits, pooled.Components);
        Assert.Equal(1, pooled.Weights.Sum(), 1e-5);
        // The first fit is the one seed alone would give: one fit (the default) is the detector it always was.
        var first = LatentMixture.Fit(bank, 2, seed: Options.Seed!.Value);
        Assert.Equal(first.Means.SelectMany(m => m), pooled.Means.Take(2).SelectMany(m => m));
        Assert.Equal(first.Means.SelectMany(m => m), LatentFit.Fit(codes, d, Options with { LatentFits = 1 }).Mixture!.Means.SelectMany(m => m));
    }

    [Fact]
    public void Each_held_out_code_is_scored_by_a_density_fitted_without_its_fold()
    {
        const int d = 6;
        var train = Codes(200, d, seed: 3);
        var heldOut = Codes(50, d, seed: 4);
        var (detector, scores) = LatentFit.CrossFit(train, heldOut, d, Options);

        Assert.Equal(50, scores.Length);
        Assert.Equal(LatentFit.Fit([.. train, .. heldOut], d, Options).Mixture!.Means.SelectMany(m => m), detector.Mixture!.Means.SelectMany(m => m));
        for (int fold = 0; fold < LatentFit.Folds; fold++)
        {
            var inFold = Enumerable.Range(0, 50).Where(i => i % LatentFit.Folds == fold).ToArray();
            var refit = Scores(LatentFit.Fit(WithoutFold(train, heldOut, d, fold), d, Options), Rows(heldOut, inFold, d), d);
            for (int j = 0; j < inFold.Length; j++) Assert.Equal(refit[j], scores[inFold[j]], Math.Max(1e-4f, refit[j] * 1e-4f));
        }
    }

    [Fact]
    public void Near_the_sample_limit_each_fold_fits_as_many_components_as_the_final_density()
    {
        // 48 + 16 codes of 16 values carry 2 components (one per 32 codes); a fold's 60 codes alone would carry 1.
        const int d = 16;
        var train = Codes(48, d, seed: 7);
        var heldOut = Codes(16, d, seed: 8);
        var options = Options with { LatentFits = 1 };
        var (detector, scores) = LatentFit.CrossFit(train, heldOut, d, options);
        Assert.Equal(2, detector.Mixture!.Components);

        int[] inFold = [0, 5, 10, 15];
        var rest = WithoutFold(train, heldOut, d, fold: 0);
        var foldCodes = Rows(heldOut, inFold, d);
        Assert.Null(LatentFit.Fit(rest, d, options).Mixture); // what the fold's own count would fit: one Gaussian
        var refit = Scores(LatentFit.Fit(rest, d, options, components: 2), foldCodes, d);
        for (int j = 0; j < inFold.Length; j++) Assert.Equal(refit[j], scores[inFold[j]], Math.Max(1e-4f, refit[j] * 1e-4f));
        Assert.Throws<ArgumentException>(() => LatentFit.CrossFit(train, [], d, options));
    }

    [Fact]
    public void Cross_fitted_scores_run_above_the_same_codes_scored_in_sample()
    {
        // 150 codes of 16 values: a density fitted on a code scores it low, as no unseen normal will be scored. The
        // expected ratio of out-of-sample to in-sample Mahalanobis distance is n / (n - d - 2), about 1.14 here.
        const int d = 16;
        var train = Codes(100, d, seed: 5);
        var heldOut = Codes(50, d, seed: 6);
        var options = Options with { LatentComponents = 1 };
        var (detector, crossFitted) = LatentFit.CrossFit(train, heldOut, d, options);
        double inSample = Scores(detector, heldOut, d).Average(), outOfSample = crossFitted.Average();
        Assert.True(outOfSample > 1.05 * inSample, $"cross-fitted mean {outOfSample}, in-sample {inSample}");
    }

    [Theory]
    [InlineData(ScoreKind.Latent)]
    [InlineData(ScoreKind.Combined)]
    public void A_model_fitted_on_its_held_out_codes_calibrates_on_cross_fitted_scores_and_retrains_the_same_way(ScoreKind score)
    {
        var data = Synthetic.Set(blobs: 64, stripes: 8, noise: 8, seed: 23); // 80 images: 60 train, 20 held out
        var options = new TrainingOptions { Epochs = 2, BatchSize = 16, Seed = 1, Score = score, LatentComponents = 2, LatentFits = 3, LatentHeldOut = true };
        var request = new BuildRequest { Spec = ModelSpec.Create(ModelSpec.Conv, data.Shape, 8), Training = options, DataDescription = "synthetic", NormalClass = "0" };
        using var result = Trainer.Train(data, request.Spec, options, CPU);
        var manifest = ModelBuilder.Describe(result, data, request, TimeProvider.System);

        Assert.Equal("validation (cross-fitted)", manifest.Calibration.Source);
        Assert.Equal(20, manifest.Calibration.Count);
        Assert.Equal(6, manifest.Detector!.Mixture!.Components);
        var again = TrainingOptions.Like(manifest);
        Assert.Equal(3, again.LatentFits);
        Assert.True(again.LatentHeldOut);

        var held = data.Subset(result.ValidationIndices);
        var inSample = new Scorer(result.Model, CPU, data.Shape, ErrorMetric.Mse, result.Detector).Score(held);
        Assert.All(inSample, s => Assert.True(float.IsFinite(s) && s >= 0, $"score {s}"));
        // The calibration is not the final density's scores of the same images: it came from the folds' densities.
        Assert.NotEqual(inSample.Order().Select(v => Math.Round(v, 4)), manifest.Calibration.Scores!.Select(v => Math.Round(v, 4)));
        if (score != ScoreKind.Latent) return;
        var (_, crossFitted) = LatentFit.CrossFit(Encode(result, data.Subset(result.TrainIndices)), Encode(result, held), 8, options);
        Assert.Equal(crossFitted.Order().Select(v => Math.Round(v, 4)), manifest.Calibration.Scores!.Select(v => Math.Round(v, 4)));
    }

    private static float[] Encode(TrainingResult result, ImageSet images)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var x = tensor(images.Pixels, [images.Count, images.Shape.Channels, images.Shape.Height, images.Shape.Width]);
        return ((IAutoencoder)result.Model).Encode(x).flatten(1).data<float>().ToArray();
    }
}
