using System.Diagnostics;
using System.Runtime.InteropServices;
using AnomalyMonitor.Core.Data;
using AnomalyMonitor.Core.Models;
using AnomalyMonitor.Core.Scoring;
using AnomalyMonitor.Core.Thresholds;
using TorchSharp;
using static TorchSharp.torch;

namespace AnomalyMonitor.Core.Training;

/// <summary>A trained model with what is needed to write its manifest.</summary>
public sealed class TrainingResult(nn.Module<Tensor, Tensor> model, ModelSpec spec) : IDisposable
{
    public nn.Module<Tensor, Tensor> Model { get; } = model;
    public ModelSpec Spec { get; } = spec;
    public List<EpochReport> History { get; } = [];
    public int BestEpoch { get; set; }
    public bool StoppedEarly { get; set; }
    /// <summary>Optimizer steps taken, and the epochs the budget allowed.</summary>
    public int Steps { get; set; }
    public int EpochBudget { get; set; }
    /// <summary>Set when the loss became NaN or infinite; the model then holds the last good weights, if any.</summary>
    public string? Diverged { get; set; }
    public int[] TrainIndices { get; set; } = [];
    public int[] ValidationIndices { get; set; } = [];
    public CalibrationStats? Calibration { get; set; }
    /// <summary>How the model scores: for a latent or combined score, with the Gaussian fitted to the training codes.</summary>
    public Detector Detector { get; set; } = Detector.Reconstruction;
    public double Seconds { get; set; }

    /// <summary>The network, and the scoring tensors its mixture laid out while it was calibrated or gated (beyond every dispose scope).</summary>
    public void Dispose()
    {
        Model.Dispose();
        Detector.Mixture?.ReleaseScoringTensors();
    }
}

public sealed class TrainingDivergedException(string message) : Exception(message)
{
    public TrainingDivergedException() : this("training diverged") { }
    public TrainingDivergedException(string message, Exception inner) : this(message + ": " + inner.Message) { }
}

/// <summary>
/// Trains an autoencoder with Adam on normal images, keeps the weights of the best validation epoch,
/// and calibrates the error statistics on the held-out images. Every batch runs in a dispose scope.
/// </summary>
public static class Trainer
{
    public static TrainingResult Train(ImageSet data, ModelSpec spec, TrainingOptions options, Device device,
        ErrorMetric errorMetric = ErrorMetric.Mse, IProgress<EpochReport>? progress = null, CancellationToken cancellationToken = default)
    {
        var problems = options.Problems().Concat(spec.Problems()).ToList();
        if (problems.Count > 0) throw new ArgumentException($"Invalid training options: {string.Join("; ", problems)}.");
        if (data.Shape != spec.Shape) throw new ArgumentException($"Data is {data.Shape} but the model takes {spec.Shape}.");
        if (data.Count < 2) throw new ArgumentException($"Training needs at least 2 images, got {data.Count}.");

        var clock = Stopwatch.StartNew();
        if (options.Seed is { } seed) random.manual_seed(seed);
        var rng = options.Seed is { } s ? new Random(s) : new Random();
        var (trainIdx, valIdx) = Split(data.Count, options.ValidationCount(data.Count), rng);

        var model = AutoencoderFactory.Create(spec);
        model.to(device);
        var result = new TrainingResult(model, spec) { TrainIndices = trainIdx, ValidationIndices = valIdx };
        Dictionary<string, Tensor>? best = null;
        try
        {
            using var optimizer = optim.Adam(model.parameters(), options.LearningRate);
            double bestLoss = double.PositiveInfinity, patienceBest = double.PositiveInfinity;
            int sinceBest = 0;
            var order = (int[])trainIdx.Clone();
            var batcher = new BatchStager(data);
            int budget = result.EpochBudget = options.EpochBudget(trainIdx.Length);
            int patience = options.PatienceEpochs(trainIdx.Length);
            for (int epoch = 1; epoch <= budget; epoch++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var epochClock = Stopwatch.StartNew();
                if (options.Shuffle) rng.Shuffle(order);
                model.train();
                double lossSum = 0;
                for (int b = 0; b < order.Length; b += options.BatchSize)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    int n = Math.Min(options.BatchSize, order.Length - b);
                    using var scope = NewDisposeScope();
                    var clean = batcher.Stage(order.AsSpan(b, n)).to(device);
                    var input = options.Noise.Apply(options.Augmentation.Apply(clean, rng));
                    var output = model.forward(input);
                    var loss = Loss(output, clean, options.Loss);
                    optimizer.zero_grad();
                    loss.backward();
                    optimizer.step();
                    result.Steps++;
                    lossSum += loss.item<float>() * n;
                }
                double trainLoss = lossSum / order.Length;
                double? valLoss = valIdx.Length > 0 ? Evaluate(model, batcher, valIdx, options, device) : null;
                double monitored = valLoss ?? trainLoss;

                if (!double.IsFinite(trainLoss) || !double.IsFinite(monitored))
                {
                    result.Diverged = $"the loss became {(double.IsFinite(trainLoss) ? monitored : trainLoss)} in epoch {epoch}";
                    result.History.Add(new EpochReport(epoch, trainLoss, valLoss, epochClock.Elapsed.TotalSeconds, false, result.Steps, budget));
                    break;
                }
                bool isBest = monitored < bestLoss;
                // Patience restarts only on a real improvement; the weights follow any improvement.
                if (monitored < patienceBest * (1 - options.MinImprovement))
                {
                    patienceBest = monitored;
                    sinceBest = 0;
                }
                else
                {
                    sinceBest++;
                }
                if (isBest)
                {
                    bestLoss = monitored;
                    result.BestEpoch = epoch;
                    ReplaceSnapshot(ref best, model);
                }
                var report = new EpochReport(epoch, trainLoss, valLoss, epochClock.Elapsed.TotalSeconds, isBest, result.Steps, budget);
                result.History.Add(report);
                progress?.Report(report);
                if (patience > 0 && sinceBest >= patience && epoch < budget)
                {
                    result.StoppedEarly = true;
                    break;
                }
            }
            if (best is not null) Restore(model, best);
            if (result.Diverged is not null && best is null)
                throw new TrainingDivergedException($"Training diverged: {result.Diverged}, before any epoch finished with a finite loss.");

            model.eval();
            var (detector, crossFitted) = FitDetector(model, data, trainIdx, valIdx, options, device, errorMetric);
            result.Detector = detector;
            result.Calibration = crossFitted is not null
                ? CalibrationStats.From(crossFitted, CrossFittedSource)
                : Calibrate(model, data, valIdx.Length > 0 ? valIdx : trainIdx, valIdx.Length > 0 ? "validation" : "training", device, errorMetric, detector);
            result.Seconds = clock.Elapsed.TotalSeconds;
            return result;
        }
        catch
        {
            result.Dispose();
            throw;
        }
        finally
        {
            DisposeSnapshot(best);
        }
    }

    public static CalibrationStats Calibrate(nn.Module<Tensor, Tensor> model, ImageSet data, int[] indices, string source, Device device, ErrorMetric metric, Detector? detector = null)
    {
        model.eval();
        var subset = data.Subset(indices);
        var errors = new Scorer(model, device, data.Shape, metric, detector).Score(subset, batchSize: 256);
        return CalibrationStats.From(errors, source);
    }

    /// <summary>
    /// For a latent or combined score: the density of the codes (LatentFit), and for the combined score the
    /// log-space mean and σ of both parts on the held-out images. With <see cref="TrainingOptions.LatentHeldOut"/>
    /// the density takes the held-out codes too, and the held-out images' scores, cross-fitted, come back
    /// for the calibration; otherwise they are null and the caller scores the held-out images itself.
    /// </summary>
    public static (Detector Detector, float[]? HeldOutScores) FitDetector(nn.Module<Tensor, Tensor> model, ImageSet data, int[] train, int[] heldOut,
        TrainingOptions options, Device device, ErrorMetric metric)
    {
        if (options.Score == ScoreKind.Reconstruction) return (Detector.Reconstruction, null);
        if (model is not IAutoencoder autoencoder)
            throw new ArgumentException($"A {Detector.Name(options.Score)} score needs an autoencoder with a readable code (conv or dense), not {model.GetType().Name}.");
        model.eval();
        var (trainCodes, dimensions) = Codes(autoencoder, data, train, device);
        Detector detector;
        float[]? latentHeldOut = null;
        if (options.LatentHeldOut && heldOut.Length > 0)
            (detector, latentHeldOut) = LatentFit.CrossFit(trainCodes, Codes(autoencoder, data, heldOut, device).Codes, dimensions, options);
        else
            detector = LatentFit.Fit(trainCodes, dimensions, options);
        if (options.Score != ScoreKind.Combined) return (detector, latentHeldOut);

        var calibration = heldOut.Length > 0 ? heldOut : train;
        var parts = new Scorer(model, device, data.Shape, metric, detector with { Score = ScoreKind.Latent }).Score(data.Subset(calibration), 0, calibration.Length, detailed: true, 256);
        var latentParts = latentHeldOut ?? parts.LatentScores;
        var (rm, rs) = Statistics.MeanStd(parts.ReconstructionErrors.Select(e => Statistics.SafeLog(e)).ToArray());
        var (lm, ls) = Statistics.MeanStd(latentParts.Select(e => Statistics.SafeLog(e)).ToArray());
        var normalization = new ScoreNormalization(rm, Math.Max(rs, 1e-6), lm, Math.Max(ls, 1e-6));
        detector = detector with { Normalization = normalization };
        if (latentHeldOut is null) return (detector, null);
        using var scope = NewDisposeScope();
        return (detector, Scorer.Combine(tensor(parts.ReconstructionErrors), tensor(latentHeldOut), normalization).data<float>().ToArray());
    }

    /// <summary>The codes of the images at <paramref name="indices"/>, N x d row after row, and d.</summary>
    private static (float[] Codes, int Dimensions) Codes(IAutoencoder autoencoder, ImageSet data, int[] indices, Device device)
    {
        var codes = new List<float>();
        int dimensions = 0;
        using var noGrad = no_grad();
        for (int b = 0; b < indices.Length; b += 256)
        {
            int n = Math.Min(256, indices.Length - b);
            using var scope = NewDisposeScope();
            var subset = data.Subset(indices.AsSpan(b, n).ToArray());
            var code = autoencoder.Encode(tensor(subset.Pixels, [n, data.Shape.Channels, data.Shape.Height, data.Shape.Width]).to(device)).flatten(1).cpu();
            dimensions = (int)code.shape[1];
            codes.AddRange(code.data<float>().ToArray());
        }
        return ([.. codes], dimensions);
    }

    /// <summary>The calibration's source when the held-out scores were cross-fitted (TrainingOptions.LatentHeldOut).</summary>
    public const string CrossFittedSource = "validation (cross-fitted)";

    /// <summary>Codes per dimension each component's covariance needs: fewer, and its inverse is mostly shrinkage.</summary>
    public const int CodesPerDimension = 2;

    /// <summary>
    /// The mixture a sample of <paramref name="codes"/> codes can carry: the requested count, but no more than
    /// one component per <see cref="CodesPerDimension"/>·d codes, so a small cold start or retraining sample
    /// falls back towards one Gaussian instead of fitting covariances it cannot estimate.
    /// </summary>
    public static int Components(int requested, int codes, int dimensions) =>
        Math.Clamp(codes / (CodesPerDimension * Math.Max(1, dimensions)), 1, Math.Max(1, requested));

    internal static (int[] Train, int[] Validation) Split(int count, int validation, Random rng)
    {
        var all = Enumerable.Range(0, count).ToArray();
        rng.Shuffle(all);
        return (all[validation..], all[..validation]);
    }

    private static double Evaluate(nn.Module<Tensor, Tensor> model, BatchStager batcher, int[] indices, TrainingOptions options, Device device)
    {
        model.eval();
        double sum = 0;
        // The same moves every epoch, so that the validation loss of one epoch compares with the next.
        var fixedMoves = new Random(20_241);
        using (no_grad())
        {
            for (int b = 0; b < indices.Length; b += options.BatchSize)
            {
                int n = Math.Min(options.BatchSize, indices.Length - b);
                using var scope = NewDisposeScope();
                var clean = batcher.Stage(indices.AsSpan(b, n)).to(device);
                sum += Loss(model.forward(options.Noise.Apply(options.Augmentation.Apply(clean, fixedMoves))), clean, options.Loss).item<float>() * n;
            }
        }
        model.train();
        return sum / indices.Length;
    }

    private static Tensor Loss(Tensor output, Tensor target, LossKind kind)
    {
        if (kind == LossKind.Mse) return nn.functional.mse_loss(output, target);
        try
        {
            return nn.functional.binary_cross_entropy(output, target);
        }
        catch (ExternalException e) when (e.Message.Contains("elements of input should be between 0 and 1", StringComparison.Ordinal) && HasNaN(output))
        {
            // libtorch refuses a NaN output where MSE would return NaN; a NaN loss (with a graph, so that
            // backward() still runs) lets the epoch's divergence check name it instead of a native stack trace.
            return output.mean() * double.NaN;
        }
    }

    private static bool HasNaN(Tensor t)
    {
        using var nan = t.isnan().any();
        return nan.item<bool>();
    }

    private static void ReplaceSnapshot(ref Dictionary<string, Tensor>? snapshot, nn.Module model)
    {
        DisposeSnapshot(snapshot);
        snapshot = [];
        // The scope takes the intermediate detach() results; only the clones leave it.
        using var scope = NewDisposeScope();
        using (no_grad())
        {
            foreach (var (name, value) in model.state_dict())
                snapshot[name] = value.detach().clone().DetachFromDisposeScope();
        }
    }

    private static void Restore(nn.Module model, Dictionary<string, Tensor> snapshot)
    {
        using var scope = NewDisposeScope();
        using (no_grad())
        {
            foreach (var (name, value) in model.state_dict())
                value.copy_(snapshot[name]);
        }
    }

    private static void DisposeSnapshot(Dictionary<string, Tensor>? snapshot)
    {
        if (snapshot is null) return;
        foreach (var t in snapshot.Values) t.Dispose();
    }

    /// <summary>Gathers shuffled images into exact-size arrays reused across batches.</summary>
    private sealed class BatchStager(ImageSet data)
    {
        private readonly Dictionary<int, float[]> _buffers = [];

        public Tensor Stage(ReadOnlySpan<int> indices)
        {
            int size = data.Shape.PixelCount;
            if (!_buffers.TryGetValue(indices.Length, out var buffer))
                _buffers[indices.Length] = buffer = new float[indices.Length * size];
            for (int i = 0; i < indices.Length; i++)
                data.Image(indices[i]).CopyTo(buffer.AsSpan(i * size, size));
            return tensor(buffer, [indices.Length, data.Shape.Channels, data.Shape.Height, data.Shape.Width]);
        }
    }
}
