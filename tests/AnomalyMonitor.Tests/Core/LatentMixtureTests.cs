using AnomalyMonitor.Core.Data;
using AnomalyMonitor.Core.Models;
using AnomalyMonitor.Core.Runtime;
using AnomalyMonitor.Core.Scoring;
using AnomalyMonitor.Core.Storage;
using AnomalyMonitor.Core.Training;
using AnomalyMonitor.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace AnomalyMonitor.Tests.Core;

/// <summary>The latent mixture: finds the styles in the codes, reduces to the single Gaussian with one component, and travels with the model.</summary>
[Collection(TorchCollection.Name)]
public sealed class LatentMixtureTests : IDisposable
{
    private readonly TempDir _dir = new();

    public LatentMixtureTests() => TorchRuntime.EnsureLoaded();

    public void Dispose() => _dir.Dispose();

    /// <summary>N codes of d values from two tight clusters at ±5 on the first axis.</summary>
    private static float[] TwoStyles(int n, int d, int seed)
    {
        var rng = new Random(seed);
        var codes = new float[n * d];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < d; j++)
                codes[(i * d) + j] = (float)((j == 0 ? (i % 2 == 0 ? 5 : -5) : 0) + (0.5 * Normal(rng)));
        return codes;
    }

    private static double Normal(Random rng) => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());

    private static float[] Scores(Func<Tensor, Tensor> score, float[] codes, int d)
    {
        using var scope = NewDisposeScope();
        return score(tensor(codes, [codes.Length / d, d])).data<float>().ToArray();
    }

    [Fact]
    public void Two_components_find_two_styles_and_the_gap_between_them_scores_as_an_anomaly()
    {
        const int d = 4;
        var codes = TwoStyles(400, d, seed: 3);
        using var bank = tensor(codes, [400, d]);
        var mixture = LatentMixture.Fit(bank, 2);
        Assert.All(mixture.Weights, w => Assert.InRange(w, 0.4, 0.6));
        Assert.Equal([-5.0, 5.0], mixture.Means.Select(m => Math.Round(m[0])).Order());

        var single = LatentGaussian.Fit(codes, 400, d);
        float[] centre = [5, 0, 0, 0], gap = [0, 0, 0, 0];
        var byMixture = Scores(c => mixture.Score(c, CPU), [.. centre, .. gap], d);
        var byGaussian = Scores(c => single.Score(c, CPU), [.. centre, .. gap], d);
        // One Gaussian spans both styles, so the empty space between them looks ordinary; the mixture sees it is not.
        Assert.True(byMixture[1] > 20 * byMixture[0], $"mixture: centre {byMixture[0]}, gap {byMixture[1]}");
        Assert.True(byGaussian[1] < byGaussian[0], $"one Gaussian: centre {byGaussian[0]}, gap {byGaussian[1]}");
    }

    [Fact]
    public void One_component_scores_as_the_single_Gaussian()
    {
        const int d = 6;
        var codes = TwoStyles(300, d, seed: 5);
        using var bank = tensor(codes, [300, d]);
        var mixture = LatentMixture.Fit(bank, 1);
        var single = LatentGaussian.Fit(codes, 300, d);
        var probe = TwoStyles(50, d, seed: 9).Select(v => v * 1.5f).ToArray();
        var a = Scores(c => mixture.Score(c, CPU), probe, d);
        var b = Scores(c => single.Score(c, CPU), probe, d);
        // EM's covariance divides by N, the single Gaussian's by N - 1: 300 codes put them 0.3% apart.
        for (int i = 0; i < a.Length; i++) Assert.Equal(b[i], a[i], b[i] * 1e-2f);
    }

    [Fact]
    public void All_components_at_once_score_as_one_at_a_time_in_double_and_survive_a_release_and_a_copy()
    {
        const int d = 6;
        using var bank = tensor(TwoStyles(300, d, seed: 21), [300, d]);
        var fits = new[] { LatentMixture.Fit(bank, 2, seed: 1), LatentMixture.Fit(bank, 3, seed: 2) };
        var mixture = LatentMixture.Pool(fits); // five components of unequal weight, as a cold start's pooled fits
        // Codes near the styles and far from both, so that the score spans ordinary and anomalous values.
        var probe = TwoStyles(40, d, seed: 22).Select((v, i) => i % 7 == 0 ? v * 4 : v).ToArray();
        var reference = mixture.ScoreReference(probe, probe.Length / d);
        void Matches(float[] scores, string when)
        {
            Assert.True(reference.Max() > 10 * reference.Min() + 1, $"the probe spans too little: {reference.Min()} to {reference.Max()}");
            for (int i = 0; i < scores.Length; i++)
                Assert.True(Math.Abs(scores[i] - reference[i]) <= (1e-3 * Math.Abs(reference[i])) + 1e-4, $"{when}: code {i} scored {scores[i]}, reference {reference[i]}");
        }
        Matches(Scores(c => mixture.Score(c, CPU), probe, d), "first batch");
        Matches(Scores(c => mixture.Score(c, CPU), probe, d), "laid out already");
        mixture.ReleaseScoringTensors();
        Matches(Scores(c => mixture.Score(c, CPU), probe, d), "after a release");
        var copy = mixture with { };
        mixture.ReleaseScoringTensors(); // the copy's tensors are its own
        Matches(Scores(c => copy.Score(c, CPU), probe, d), "a copy");
        Assert.Equal(mixture, copy);
    }

    [Fact]
    public void Few_codes_for_many_components_still_give_a_finite_score()
    {
        // A cold start or a small retraining set: fewer codes per component than dimensions, and likely an empty cluster.
        const int d = 8;
        var codes = TwoStyles(12, d, seed: 11);
        using var bank = tensor(codes, [12, d]);
        var mixture = LatentMixture.Fit(bank, 5);
        Assert.All(Scores(c => mixture.Score(c, CPU), TwoStyles(20, d, seed: 12), d), s => Assert.True(float.IsFinite(s) && s >= 0, $"score {s}"));
        Assert.Throws<ArgumentException>(() => LatentMixture.Fit(bank, 7)); // fewer than two codes a component
    }

    [Fact]
    public void A_model_trained_with_a_mixture_saves_it_scores_with_it_and_retrains_with_it()
    {
        var data = Synthetic.Set(blobs: 64, stripes: 8, noise: 8, seed: 21);
        var model = TrainWithMixture(data, "model", epochs: 2, components: 3);

        var manifest = ModelFiles.ReadManifest(model);
        var mixture = Assert.IsType<LatentMixture>(manifest.Detector?.Mixture);
        Assert.Equal(3, mixture.Components);
        Assert.Equal(8, mixture.Dimensions);
        Assert.Equal(3, TrainingOptions.Like(manifest).LatentComponents); // the next model of its line fits one too

        var loaded = ModelFiles.Load(model, CPU);
        var scores = loaded.CreateScorer().Score(data);
        Assert.All(scores, s => Assert.True(float.IsFinite(s) && s >= 0, $"score {s}"));

        // The mixture's scoring tensors live outside every dispose scope: letting the model go must free them, or a
        // service that swaps models for months leaks five tensors a swap.
        var inUse = Assert.IsType<LatentMixture>(loaded.Manifest.Detector?.Mixture);
        var laid = inUse.ScoringTensors;
        Assert.Equal(5, laid.Count);
        Assert.All(laid, t => Assert.False(t.IsInvalid));
        loaded.Dispose();
        Assert.All(laid, t => Assert.True(t.IsInvalid, "a scoring tensor outlived its model"));
        Assert.Empty(inUse.ScoringTensors);
    }

    [Theory]
    [InlineData(5, 10_000, 64, 5)] // a full class: the count asked for
    [InlineData(5, 750, 64, 5)]    // a cold start from 1,000 images (a quarter held out)
    [InlineData(5, 300, 64, 2)]
    [InlineData(5, 100, 64, 1)]    // one Gaussian
    [InlineData(1, 10_000, 64, 1)]
    public void A_small_sample_fits_fewer_components(int requested, int codes, int dimensions, int expected) =>
        Assert.Equal(expected, Trainer.Components(requested, codes, dimensions));

    [Fact]
    public void A_sample_too_small_for_its_mixture_fits_fewer_and_its_retraining_asks_again()
    {
        var data = Synthetic.Set(blobs: 64, stripes: 8, noise: 8, seed: 22); // 80 images: 60 train, 20 held out
        var model = TrainWithMixture(data, "model-small", epochs: 1, components: 64);

        var manifest = ModelFiles.ReadManifest(model);
        Assert.Equal(Trainer.Components(64, 60, 8), manifest.Detector?.Mixture?.Components); // 3: 60 codes of 8 values
        Assert.Equal(64, manifest.Training.LatentComponents);
        Assert.Equal(64, TrainingOptions.Like(manifest).LatentComponents); // a larger sample later may carry more
    }

    [Fact]
    public void A_training_result_frees_the_scoring_tensors_its_calibration_laid_out()
    {
        var data = Synthetic.Set(blobs: 64, stripes: 8, noise: 8, seed: 22);
        var result = Trainer.Train(data, ModelSpec.Create(ModelSpec.Conv, data.Shape, 8),
            new TrainingOptions { Epochs = 1, BatchSize = 16, Seed = 1, Score = ScoreKind.Latent, LatentComponents = 3 }, CPU);
        var mixture = Assert.IsType<LatentMixture>(result.Detector.Mixture);
        // Calibrating the latent score scored with the mixture: each retraining run leaked these until the result went.
        using (var scope = NewDisposeScope()) mixture.Score(tensor(new float[2 * 8], [2, 8]), CPU);
        var laid = mixture.ScoringTensors;
        Assert.NotEmpty(laid);
        result.Dispose();
        Assert.All(laid, t => Assert.True(t.IsInvalid, "a scoring tensor outlived its training result"));
    }

    private string TrainWithMixture(ImageSet data, string name, int epochs, int components)
    {
        var model = _dir.File(name);
        ModelBuilder.TrainAndSave(data, new BuildRequest
        {
            Spec = ModelSpec.Create(ModelSpec.Conv, data.Shape, 8),
            Training = new TrainingOptions { Epochs = epochs, BatchSize = 16, Seed = 1, Score = ScoreKind.Latent, LatentComponents = components },
            DataDescription = "synthetic",
            NormalClass = "0",
        }, model, CPU, TimeProvider.System);
        return model;
    }
}
