using AnomalyMonitor.Core.Data;
using AnomalyMonitor.Core.Models;
using AnomalyMonitor.Core.Runtime;
using AnomalyMonitor.Core.Scoring;
using AnomalyMonitor.Core.Storage;
using AnomalyMonitor.Core.Thresholds;
using static TorchSharp.torch;

namespace AnomalyMonitor.Core.Training;

/// <summary>What a training run needs besides the images: the model, the trainer's settings and how to judge.</summary>
public sealed record BuildRequest
{
    public required ModelSpec Spec { get; init; }
    public TrainingOptions Training { get; init; } = new();
    public ErrorMetric ErrorMetric { get; init; } = ErrorMetric.Mse;
    public ThresholdPolicy Threshold { get; init; } = ThresholdPolicy.Default;
    public string DataDescription { get; init; } = "";
    public string? NormalClass { get; init; }
    public int? Version { get; init; }
    public int? ParentVersion { get; init; }
}

/// <summary>Trains a model, calibrates it and writes its directory: the one path used by the CLI, the service and the benchmarks.</summary>
public static class ModelBuilder
{
    public static ModelManifest TrainAndSave(ImageSet data, BuildRequest request, string outputDirectory, Device device,
        TimeProvider time, IProgress<EpochReport>? progress = null, CancellationToken cancellationToken = default)
    {
        using var result = Trainer.Train(data, request.Spec, request.Training, device, request.ErrorMetric, progress, cancellationToken);
        var manifest = Describe(result, data, request, time);
        return ModelFiles.Save(outputDirectory, result.Model, manifest);
    }

    public static ModelManifest Describe(TrainingResult result, ImageSet data, BuildRequest request, TimeProvider time)
    {
        var t = request.Training;
        return new ModelManifest
        {
            Architecture = request.Spec.Architecture,
            InputShape = new InputShapeJson(request.Spec.Shape.Channels, request.Spec.Shape.Height, request.Spec.Shape.Width),
            Latent = request.Spec.Latent,
            ParameterCount = AutoencoderFactory.ParameterCount(result.Model),
            Loss = t.Loss,
            ErrorMetric = request.ErrorMetric,
            Threshold = request.Threshold.ToString(),
            Training = new TrainingParameters(t.Epochs, t.BatchSize, t.LearningRate, t.ValidationSplit, t.Shuffle, t.Seed, t.Patience,
                t.Noise.ToString(), result.StoppedEarly, Math.Round(result.Seconds, 2), t.MinSteps, result.Steps, result.EpochBudget, t.Augmentation.ToString(), t.LatentComponents,
                t.LatentFits, t.LatentHeldOut, result.Diverged),
            Detector = result.Detector,
            Data = new DataProvenance(data.Fingerprint(), request.DataDescription, data.Count, request.NormalClass),
            Calibration = result.Calibration!,
            History = result.History,
            BestEpoch = result.BestEpoch,
            CreatedAt = time.GetUtcNow(),
            ToolVersion = typeof(ModelBuilder).Assembly.GetName().Version?.ToString() ?? "unknown",
            TorchSharpVersion = TorchRuntime.TorchSharpVersion,
            Weights = new WeightsInfo(ModelFiles.WeightsFile, 0, ""),
            Version = request.Version,
            ParentVersion = request.ParentVersion,
        };
    }
}
