using System.Text.Json;
using System.Text.Json.Serialization;
using AnomalyMonitor.Core.Scoring;
using AnomalyMonitor.Core.Thresholds;
using AnomalyMonitor.Core.Training;

namespace AnomalyMonitor.Core.Storage;

/// <summary>Everything needed to rebuild, trust and judge with a saved model. Written beside the weights as manifest.json.</summary>
public sealed record ModelManifest
{
    public const int CurrentFormat = 1;

    public int Format { get; init; } = CurrentFormat;
    public required string Architecture { get; init; }
    public required InputShapeJson InputShape { get; init; }
    public int Latent { get; init; }
    public long ParameterCount { get; init; }
    public LossKind Loss { get; init; }
    public ErrorMetric ErrorMetric { get; init; }
    public string Threshold { get; init; } = ThresholdPolicy.Default.ToString();
    public required TrainingParameters Training { get; init; }
    public required DataProvenance Data { get; init; }
    public required CalibrationStats Calibration { get; init; }
    public List<EpochReport> History { get; init; } = [];
    public int BestEpoch { get; init; }
    public DateTimeOffset CreatedAt { get; init; }
    public string ToolVersion { get; init; } = "";
    public string TorchSharpVersion { get; init; } = "";
    public required WeightsInfo Weights { get; init; }

    /// <summary>Version number in a model registry (v&lt;N&gt;), and the version it was trained from; null for a standalone model.</summary>
    public int? Version { get; init; }
    public int? ParentVersion { get; init; }

    /// <summary>How the model scores an image; absent (null) in models written before there was a choice: reconstruction.</summary>
    public Detector? Detector { get; init; }

    /// <summary>Free-form results of later checks (the retraining gate records its numbers here).</summary>
    public Dictionary<string, JsonElement>? Extra { get; init; }

    public static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.KebabCaseLower) },
    };
}

public sealed record InputShapeJson(int Channels, int Height, int Width);

/// <summary>
/// How a model was trained. MinSteps, Steps (taken) and EpochBudget are absent (0) in models written before
/// they existed; LatentComponents is the mixture asked for (the detector holds the one a sample could carry,
/// perhaps fewer), absent (null) before it existed; so are LatentFits (seeds pooled) and LatentHeldOut (the density
/// fitted on the held-out codes too, calibrated by cross-fitting). Diverged says why training stopped on a
/// non-finite loss (the weights are then those of the best epoch before it); null when it did not.
/// </summary>
public sealed record TrainingParameters(int Epochs, int BatchSize, double LearningRate, double ValidationSplit, bool Shuffle, int? Seed, int Patience, string Noise, bool StoppedEarly, double Seconds,
    int MinSteps = 0, int Steps = 0, int EpochBudget = 0, string? Augmentation = null, int? LatentComponents = null,
    int? LatentFits = null, bool? LatentHeldOut = null, string? Diverged = null);

public sealed record DataProvenance(string Fingerprint, string Description, int Count, string? NormalClass);

public sealed record WeightsInfo(string File, long Bytes, string Sha256);
