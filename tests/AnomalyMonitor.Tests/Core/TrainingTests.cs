using AnomalyMonitor.Core.Data;
using AnomalyMonitor.Core.Evaluation;
using AnomalyMonitor.Core.Models;
using AnomalyMonitor.Core.Runtime;
using AnomalyMonitor.Core.Scoring;
using AnomalyMonitor.Core.Training;
using AnomalyMonitor.Tests.Support;
using TorchSharp;

namespace AnomalyMonitor.Tests.Core;

/// <summary>Real TorchSharp training on small generated images: blobs are normal, stripes and noise are not.</summary>
[Collection(TorchCollection.Name)]
public class TrainingTests
{
    private static readonly TrainingOptions Quick = new() { Epochs = 8, BatchSize = 32, Seed = 7, Patience = 0 };

    public TrainingTests() => TorchRuntime.EnsureLoaded();

    private static double Auroc(float[] errors, ImageSet set) =>
        BinaryMetrics.AreaUnderRoc(errors.Select(e => (double)e).ToArray(), set.Labels.Select(l => l != 0).ToArray());

    [Theory]
    [InlineData(ModelSpec.Conv)]
    [InlineData(ModelSpec.ConvPool)]
    [InlineData(ModelSpec.Dense)]
    public void Trained_model_separates_anomalies_from_normals(string architecture)
    {
        var train = Synthetic.Set(blobs: 400, stripes: 0, noise: 0, seed: 1);
        var test = Synthetic.Set(blobs: 60, stripes: 30, noise: 30, seed: 2);
        using var result = Trainer.Train(train, ModelSpec.Create(architecture, train.Shape), Quick, torch.CPU);
        var errors = new Scorer(result.Model, torch.CPU, train.Shape, ErrorMetric.Mse).Score(test);
        double auroc = Auroc(errors, test);
        Assert.True(auroc > 0.95, $"{architecture}: AUROC {auroc:0.000} on blobs vs stripes/noise; training did not work");
        Assert.Equal(Quick.Epochs, result.History.Count);
        Assert.True(result.History[^1].Loss < result.History[0].Loss, "the loss should fall");
        Assert.Equal("validation", result.Calibration!.Source);
        Assert.Equal(100, result.Calibration.Count); // a quarter of 400: MinValidation (1,000) asks for more than 10%
        Assert.Equal(100, result.Calibration.Scores!.Length);
    }

    [Theory]
    [InlineData(LossKind.Bce)]
    [InlineData(LossKind.Mse)]
    public void A_loss_that_turns_NaN_is_reported_as_divergence_not_as_a_native_error(LossKind loss)
    {
        // One NaN pixel stands in for a CPU kernel that returns NaN (seen with oneDNN's AVX2 kernels on one
        // machine): from the first step the model's output is NaN, and BCE in libtorch throws on it.
        var set = Synthetic.Set(blobs: 40, stripes: 0, noise: 0, seed: 4);
        var pixels = (float[])set.Pixels.Clone();
        pixels[5] = float.NaN;
        var broken = new ImageSet(set.Shape, pixels, set.Labels, set.Ids);
        var e = Assert.Throws<TrainingDivergedException>(() =>
            Trainer.Train(broken, ModelSpec.Create(ModelSpec.Conv, set.Shape), Quick with { Epochs = 2, Loss = loss, ValidationSplit = 0 }, torch.CPU));
        Assert.Contains("the loss became NaN in epoch 1", e.Message);
    }

    [Fact]
    public void OneDnn_is_capped_at_AVX_unless_the_environment_names_a_cap()
    {
        var named = Environment.GetEnvironmentVariable(OneDnn.Variable) ?? Environment.GetEnvironmentVariable("DNNL_MAX_CPU_ISA");
        Assert.Equal(named ?? OneDnn.DefaultCap, OneDnn.Cap);
        if (named is null) Assert.Equal(OneDnn.DefaultCap, OneDnn.NativeValue());
    }

    [Fact]
    public void NNPACK_is_switched_off_once_libtorch_is_loaded()
    {
        // Where it cannot start, libtorch would retry it (and warn on stderr) at every small-batch convolution.
        Assert.False(Nnpack.Enabled);
    }

    [Fact]
    public void No_tensor_outlives_training_or_scoring()
    {
        static long Live() => DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        var train = Synthetic.Set(blobs: 120, stripes: 0, noise: 0, seed: 3);
        var conv = ModelSpec.Create(ModelSpec.Conv, train.Shape);
        Trainer.Train(train, conv, Quick with { Epochs = 1 }, torch.CPU).Dispose(); // one-time lazy initialisation inside libtorch

        // TorchSharp's convolution modules keep one handle each after Dispose: measure that constant on its own.
        long start = Live();
        AutoencoderFactory.Create(conv).Dispose();
        long perModel = Live() - start;

        long before = Live();
        using (var result = Trainer.Train(train, conv, Quick with { Epochs = 3, BatchSize = 8, Noise = NoiseSpec.Parse("gaussian:0.3") }, torch.CPU))
        {
            long afterTraining = Live();
            var scorer = new Scorer(result.Model, torch.CPU, train.Shape, ErrorMetric.Bce);
            for (int i = 0; i < 5; i++) scorer.Score(train, 0, train.Count, detailed: true, batchSize: 16);
            Assert.Equal(afterTraining, Live()); // scoring: exactly back
        }
        Assert.Equal(before + perModel, Live()); // training: nothing per batch or per epoch

        before = Live();
        Trainer.Train(train, ModelSpec.Create(ModelSpec.Dense, train.Shape), Quick with { Epochs = 3, BatchSize = 8 }, torch.CPU).Dispose();
        Assert.Equal(before, Live()); // no convolutions, so exactly back
    }

    [Fact]
    public void The_same_seed_gives_the_same_run()
    {
        var train = Synthetic.Set(blobs: 96, stripes: 0, noise: 0, seed: 4);
        var options = Quick with { Epochs = 2 };
        using var a = Trainer.Train(train, ModelSpec.Create(ModelSpec.Dense, train.Shape), options, torch.CPU);
        using var b = Trainer.Train(train, ModelSpec.Create(ModelSpec.Dense, train.Shape), options, torch.CPU);
        Assert.Equal(a.ValidationIndices, b.ValidationIndices);
        for (int i = 0; i < 2; i++) Assert.Equal(a.History[i].Loss, b.History[i].Loss, 4);
    }

    [Fact]
    public void Early_stopping_keeps_the_best_epoch()
    {
        var train = Synthetic.Set(blobs: 96, stripes: 0, noise: 0, seed: 5);
        // A learning rate this high makes validation loss wander, so patience 1 stops early.
        var options = Quick with { Epochs = 30, LearningRate = 0.05, Patience = 1, Loss = LossKind.Mse };
        using var result = Trainer.Train(train, ModelSpec.Create(ModelSpec.Dense, train.Shape), options, torch.CPU);
        Assert.True(result.StoppedEarly, "training should stop before 30 epochs");
        Assert.True(result.History.Count < 30);
        var best = result.History.Single(h => h.Epoch == result.BestEpoch);
        Assert.Equal(result.History.Min(h => h.ValidationLoss!.Value), best.ValidationLoss!.Value, 9);
        // The model holds the best weights: its validation error equals the best epoch's validation loss.
        var val = train.Subset(result.ValidationIndices);
        var mse = new Scorer(result.Model, torch.CPU, train.Shape, ErrorMetric.Mse).Score(val).Average();
        Assert.Equal(best.ValidationLoss!.Value, mse, 3);
    }

    [Theory]
    [InlineData("gaussian:0.5")]
    [InlineData("salt-pepper:0.2")]
    public void Denoising_training_learns_to_remove_the_noise(string noise)
    {
        var train = Synthetic.Set(blobs: 300, stripes: 0, noise: 0, seed: 6);
        var spec = NoiseSpec.Parse(noise);
        using var result = Trainer.Train(train, ModelSpec.Create(ModelSpec.Conv, train.Shape), Quick with { Noise = spec }, torch.CPU);
        // Clean target, noisy input: the reconstruction of a noisy blob is closer to the clean blob than the noisy input is.
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var clean = torch.tensor(train.Pixels[..(32 * 256)], [32, 1, 16, 16]);
        var noisy = spec.Apply(clean);
        result.Model.eval();
        var denoised = result.Model.forward(noisy);
        double before = (noisy - clean).square().mean().item<float>();
        double after = (denoised - clean).square().mean().item<float>();
        Assert.True(after < before * 0.5, $"reconstruction MSE to the clean image {after:0.0000} vs noisy input {before:0.0000}");
    }

    /// <summary>
    /// Ninety training images at batch 32 are three optimizer steps an epoch: five epochs leave the model far
    /// from converged. The step budget gives the same five-epoch setting the epochs it needs: the validation
    /// loss falls to a fraction of the short run's and flattens out by the end.
    /// </summary>
    [Fact]
    public void A_small_set_converges_through_the_step_budget()
    {
        var small = Synthetic.Set(blobs: 100, stripes: 0, noise: 0, seed: 9);
        var epochsOnly = Quick with { Epochs = 5, Loss = LossKind.Mse };
        using var few = Trainer.Train(small, ModelSpec.Create(ModelSpec.Dense, small.Shape), epochsOnly, torch.CPU);
        using var budgeted = Trainer.Train(small, ModelSpec.Create(ModelSpec.Dense, small.Shape), epochsOnly with { MinSteps = 1500 }, torch.CPU);

        Assert.Equal(15, few.Steps);
        Assert.Equal(5, few.EpochBudget);
        Assert.Equal(500, budgeted.EpochBudget);                // 1,500 steps at 3 an epoch
        Assert.Equal(1500, budgeted.Steps);
        Assert.Equal(budgeted.History[^1].Steps, budgeted.Steps);
        double before = few.History.Min(h => h.ValidationLoss!.Value), after = budgeted.History.Min(h => h.ValidationLoss!.Value);
        Assert.True(after < before * 0.2, $"validation loss {after:0.00000} after the step budget vs {before:0.00000} after 5 epochs");
        // Converged: the last fifth of the run gained little next to the first four fifths.
        double at80 = budgeted.History.Take(400).Min(h => h.ValidationLoss!.Value);
        Assert.True((at80 - after) < 0.1 * (before - after), $"still falling: {at80:0.00000} at 80% of the run, {after:0.00000} at the end");
    }

    [Theory]
    [InlineData(5, 40, 0, 5000, 40, 5)]       // the epochs set the budget: patience as given
    [InlineData(5, 40, 3000, 5000, 75, 10)]   // 40 steps an epoch: 3,000 steps take 75 epochs, patience ×75/40
    [InlineData(5, 40, 3000, 750, 500, 63)]   // a cold start's 750 images: 6 steps an epoch, 500 epochs, patience ×12.5
    [InlineData(0, 40, 3000, 750, 500, 0)]    // off stays off
    public void Patience_stretches_with_the_step_budget(int patience, int epochs, int minSteps, int images, int budget, int expected)
    {
        var options = new TrainingOptions { Patience = patience, Epochs = epochs, MinSteps = minSteps };
        Assert.Equal(budget, options.EpochBudget(images));
        Assert.Equal(expected, options.PatienceEpochs(images));
    }

    [Fact]
    public void Cancellation_stops_training()
    {
        var train = Synthetic.Set(blobs: 64, stripes: 0, noise: 0, seed: 8);
        using var cts = new CancellationTokenSource();
        var progress = new Callback(_ => cts.Cancel());
        Assert.ThrowsAny<OperationCanceledException>(() =>
            Trainer.Train(train, ModelSpec.Create(ModelSpec.Dense, train.Shape), Quick with { Epochs = 50 }, torch.CPU, progress: progress, cancellationToken: cts.Token));
    }

    [Fact]
    public void Bad_training_options_are_listed_together()
    {
        var train = Synthetic.Set(blobs: 8, stripes: 0, noise: 0);
        var e = Assert.Throws<ArgumentException>(() =>
            Trainer.Train(train, ModelSpec.Create(ModelSpec.Dense, train.Shape), new TrainingOptions { Epochs = 0, BatchSize = 0, ValidationSplit = 1.5, LatentFits = 0 }, torch.CPU));
        Assert.Contains("epochs", e.Message);
        Assert.Contains("batch size", e.Message);
        Assert.Contains("validation split", e.Message);
        Assert.Contains("latent fits", e.Message);
    }

    private sealed class Callback(Action<EpochReport> action) : IProgress<EpochReport>
    {
        public void Report(EpochReport value) => action(value);
    }
}
