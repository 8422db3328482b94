using AnomalyMonitor.Core.Imaging;
using AnomalyMonitor.Core.Runtime;
using AnomalyMonitor.Core.Scoring;
using AnomalyMonitor.Core.Storage;
using AnomalyMonitor.Core.Thresholds;
using AnomalyMonitor.Hosting;
using AnomalyMonitor.Telemetry;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using static TorchSharp.torch;

namespace AnomalyMonitor.Pipeline;

/// <summary>
/// The model that judges, its scorer and its rolling judge. Owned by the scoring loop; other threads
/// only read <see cref="IsJudging"/>, <see cref="InputShape"/> and the published numbers.
/// </summary>
public sealed class ModelHolder(
    IOptions<ModelsOptions> models, IOptions<JudgeOptions> judge, IOptions<BootstrapOptions> bootstrap,
    PathResolver paths, MonitorMetrics metrics, ILogger<ModelHolder> logger) : IDisposable
{
    private volatile LoadedModel? _model;
    private Device? _device;

    public LoadedModel? Model => _model;
    public Scorer? Scorer { get; private set; }
    public RollingJudge? Judge { get; private set; }
    public bool IsJudging => _model is not null;
    public int Version => _model?.Manifest.Version ?? 0;
    public string Fingerprint => _model?.Manifest.Weights.Sha256 ?? "";
    public string ModelDirectory => paths.Resolve(models.Value.Path);

    /// <summary>The model's input, or the configured bootstrap shape while there is no model yet.</summary>
    public ImageShape InputShape => _model?.Shape ?? ImageShape.Parse(bootstrap.Value.Shape ?? "28x28x1");

    public Device Device => _device ??= ResolveDevice();

    /// <summary>Where the current model lives: the model directory itself, or the version its "current" file names.</summary>
    public string? CurrentModelPath()
    {
        var root = ModelDirectory;
        if (File.Exists(Path.Combine(root, ModelFiles.ManifestFile))) return root;
        var pointer = Path.Combine(root, "current");
        if (File.Exists(pointer))
        {
            var name = File.ReadAllText(pointer).Trim();
            var dir = Path.Combine(root, name);
            if (File.Exists(Path.Combine(dir, ModelFiles.ManifestFile))) return dir;
        }
        return null;
    }

    /// <summary>Loads the current model if there is one; false means the service must learn one first.</summary>
    public bool TryLoad()
    {
        var path = CurrentModelPath();
        if (path is null) return false;
        try
        {
            Install(ModelFiles.Load(path, Device));
            return true;
        }
        catch (ModelLoadException e)
        {
            metrics.ModelLoadFailures.Inc();
            Log.ModelLoadFailed(logger, e.Message);
            throw;
        }
    }

    public void Install(LoadedModel model)
    {
        var previous = _model;
        if (models.Value.Threads > 0) TorchSharp.torch.set_num_threads(models.Value.Threads);
        Scorer = model.CreateScorer();
        Judge = new RollingJudge(Settings(judge.Value), model.Manifest.Calibration);
        _model = model;
        previous?.Dispose();
        metrics.ModelVersion.Set(Version);
        metrics.ModelCreated.Set(model.Manifest.CreatedAt.ToUnixTimeSeconds());
        Log.ModelLoaded(logger, model.Directory, model.Manifest.Architecture, model.Shape.ToString(), Version, model.Device.ToString());
        PublishJudgeNumbers();
    }

    public void PublishJudgeNumbers()
    {
        if (Judge is null) return;
        var (mean, std) = Judge.Statistics();
        var space = judge.Value.Space.ToString().ToLowerInvariant();
        metrics.Threshold.Set(Judge.Threshold);
        metrics.Mean.WithLabels(space).Set(mean);
        metrics.Std.WithLabels(space).Set(std);
        metrics.WindowScores.Set(Judge.WindowCount);
        metrics.LiveTensors.Set(TorchSharp.torch.Tensor.TotalCount);
    }

    public static JudgeSettings Settings(JudgeOptions o) => new()
    {
        K = o.K,
        TwoSided = o.TwoSided,
        Space = o.Space,
        Window = o.Window,
        MinWindow = o.MinWindow,
        TruncationCorrection = o.TruncationCorrection,
        Accept = o.Accept,
    };

    private Device ResolveDevice()
    {
        var (device, description) = TorchRuntime.ResolveDevice(models.Value.Device);
        logger.LogInformation("Device: {Device}", description);
        return device;
    }

    public void Dispose() => _model?.Dispose();
}
