using AnomalyMonitor.Core.Imaging;
using AnomalyMonitor.Core.Runtime;
using AnomalyMonitor.Core.Scoring;
using AnomalyMonitor.Pipeline.Scoring;
using AnomalyMonitor.Core.Storage;
using AnomalyMonitor.Core.Thresholds;
using AnomalyMonitor.Registry;
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
    ModelRegistry registry, IBatchScorerFactory scorers, MonitorMetrics metrics, TimeProvider time, ILogger<ModelHolder> logger) : IDisposable
{
    // A judge on the edge of its guard holds and lets go block after block: one warning per quarter hour says so.
    private readonly ReportThrottle _heldReports = new(TimeSpan.FromMinutes(15), time);

    private volatile LoadedModel? _model;
    private LoadedModel? _pending;
    private volatile CancellationTokenSource _offered = new();
    private Device? _device;

    public LoadedModel? Model => _model;
    public IBatchScorer? Scorer { get; private set; }
    /// <summary>A second scorer over the same model, for the scoring lane (null with one lane).</summary>
    public IBatchScorer? SideScorer { get; private set; }
    public RollingJudge? Judge { get; private set; }
    public bool IsJudging => _model is not null;
    public int Version => _model?.Manifest.Version ?? 0;
    public string Fingerprint => _model?.Manifest.Weights.Sha256 ?? "";

    /// <summary>The model's input, or the configured bootstrap shape while there is no model yet.</summary>
    public ImageShape InputShape => _model?.Shape ?? ImageShape.Parse(bootstrap.Value.Shape ?? "28x28x1");

    public Device Device => _device ??= ResolveDevice();

    /// <summary>Loads the current model if there is one; false means the service must learn one first.</summary>
    public bool TryLoad()
    {
        var path = registry.CurrentPath();
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

    /// <summary>
    /// Hands a new model (a promotion or a rollback) to the scoring loop, which installs it between two
    /// batches: no batch is ever scored by a half-installed model. A newer offer replaces an unapplied one.
    /// </summary>
    public void Offer(LoadedModel model)
    {
        Interlocked.Exchange(ref _pending, model)?.Dispose();
        _offered.Cancel();
    }

    /// <summary>Cancelled when a model is offered, so that an idle scoring loop wakes to install it.</summary>
    public CancellationToken Offered => _offered.Token;

    /// <summary>True while an offered model waits to be installed: the scoring loop stops taking batches and comes round to it.</summary>
    public bool HasPending => Volatile.Read(ref _pending) is not null;

    /// <summary>Called by the scoring loop between batches; true if a new model now judges.</summary>
    public bool ApplyPending()
    {
        if (Volatile.Read(ref _pending) is null) return false;
        // A fresh token first: an offer racing with this call then wakes the loop again instead of being missed.
        _offered = new CancellationTokenSource();
        var model = Interlocked.Exchange(ref _pending, null);
        if (model is null) return false;
        var refused = registry.CurrentVersion();
        try
        {
            Install(model);
            return true;
        }
        catch (ModelLoadException e)
        {
            // The scoring thread must not end for it: the model judging goes on, and "current" names it again,
            // so that a restart does not meet the refused one first.
            // Named back before it is reported: whoever reads the failure (a dashboard, a test) sees the registry as it stays.
            if (_model is not null && refused != Version && Version > 0) TryNameCurrent(Version);
            metrics.ModelLoadFailures.Inc();
            Log.ModelLoadFailed(logger, e.Message);
            return false;
        }
    }

    private void TryNameCurrent(int version)
    {
        try { registry.SetCurrent(version); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { Log.SinkFailed(logger, "model current", registry.Root, e.Message); }
    }

    /// <summary>True when start-up fell back from a damaged current model to an older valid one.</summary>
    public bool OnFallback { get; private set; }

    public void MarkFallback(bool fallback)
    {
        OnFallback = fallback;
        metrics.ModelFallback.Set(fallback ? 1 : 0);
    }

    private int _scoringThreads;

    /// <summary>
    /// libtorch's thread count (OpenMP) is kept per thread, and a thread that has not set its own starts
    /// from the last count set anywhere: after a retraining run set Retrain:Threads on its thread, a pool
    /// thread new to the scoring loop would score with that count. So the loop re-asserts Models:Threads
    /// (or libtorch's default as read when it loaded; one thread for a batch under Models:SmallBatch) before each
    /// batch; a no-op when the count is already right.
    /// </summary>
    public void ApplyScoringThreads(int batchCount = int.MaxValue)
    {
        int threads = ScoringThreads(batchCount);
        if (TorchSharp.torch.get_num_threads() != threads) TorchSharp.torch.set_num_threads(threads);
    }

    /// <summary>The libtorch threads a batch of <paramref name="batchCount"/> images scores on.</summary>
    public int ScoringThreads(int batchCount)
    {
        if (_scoringThreads == 0) _scoringThreads = models.Value.Threads > 0 ? models.Value.Threads : TorchRuntime.DefaultThreads;
        return batchCount < models.Value.SmallBatch ? 1 : _scoringThreads;
    }

    /// <summary>Batches scored side by side: Models:Lanes, or (0) two on the CPU when there are two threads to share, else one.</summary>
    public int Lanes => models.Value.Lanes > 0 ? models.Value.Lanes
        : Device.type == TorchSharp.DeviceType.CPU && ScoringThreads(int.MaxValue) >= 2 ? 2 : 1;

    /// <summary>The libtorch threads each of two side-by-side batches scores on.</summary>
    public int LaneThreads => Math.Max(1, ScoringThreads(int.MaxValue) / 2);

    /// <summary>Sets the calling thread's libtorch count for a batch scored beside another.</summary>
    public void ApplyLaneThreads()
    {
        if (TorchSharp.torch.get_num_threads() != LaneThreads) TorchSharp.torch.set_num_threads(LaneThreads);
    }

    /// <summary>Raised on the installing thread once a model judges (the fleet's trainer publishes it from here).</summary>
    public event Action<LoadedModel>? Installed;

    /// <summary>
    /// Makes <paramref name="model"/> the one that judges, and takes it over. Its scorers and judge are built
    /// before anything is swapped: a model whose files load but which cannot judge (a manifest whose score or
    /// calibration does not fit its network) is disposed and refused with a <see cref="ModelLoadException"/>,
    /// and the model judging before goes on.
    /// </summary>
    public void Install(LoadedModel model)
    {
        IBatchScorer? scorer = null, side = null;
        RollingJudge created;
        try
        {
            ApplyScoringThreads();
            scorer = scorers.Create(model);
            side = Lanes >= 2 ? scorers.Create(model) : null;
            created = CreateJudge(model);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            scorer?.Dispose();
            side?.Dispose();
            model.Dispose();
            throw CannotJudge(model, e);
        }
        var previous = _model;
        var previousScorer = Scorer;
        var previousSide = SideScorer;
        (Scorer, SideScorer, Judge) = (scorer, side, created);
        previousScorer?.Dispose();
        previousSide?.Dispose();
        (_learned, _refused, _held) = (0, 0, false); // the guard's counts start over with the new judge
        _model = model;
        previous?.Dispose();
        metrics.ModelVersion.Set(Version);
        metrics.ModelCreated.Set(model.Manifest.CreatedAt.ToUnixTimeSeconds());
        Log.ModelLoaded(logger, model.Directory, model.Manifest.Architecture, model.Shape.ToString(), Version, model.Device.ToString());
        PublishJudgeNumbers();
        try
        {
            Installed?.Invoke(model);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            Log.SinkFailed(logger, "model installed", $"v{Version}", e.Message); // a listener's failure never stops scoring
        }
        if (previous is not null && OnFallback && model.Directory == registry.CurrentPath()) MarkFallback(false);
    }

    /// <summary>The judge's statistics space, as alerts and metrics name it: "log" or "linear".</summary>
    public string SpaceName => (Judge?.Policy.Space ?? judge.Value.Space).ToString().ToLowerInvariant();

    private bool _held;
    private long _learned, _refused;

    private void PublishGuard(RollingJudge judge)
    {
        metrics.Blocks.WithLabels("learned").Inc(judge.BlocksLearned - _learned);
        metrics.Blocks.WithLabels("refused").Inc(judge.BlocksRefused - _refused);
        (_learned, _refused) = (judge.BlocksLearned, judge.BlocksRefused);
        if (double.IsFinite(judge.LastBandShare)) metrics.BandShare.Set(judge.LastBandShare);
        metrics.WindowHeld.Set(judge.Held ? 1 : 0);
        if (judge.Held == _held) return;
        _held = judge.Held;
        if (!_held) Log.WindowReleased(logger, judge.LastBandShare, RollingJudge.BandShare);
        else if (_heldReports.Count(out var times)) Log.WindowHeld(logger, judge.LastBandShare, RollingJudge.BandShare, times);
    }

    public void PublishJudgeNumbers()
    {
        if (Judge is null) return;
        var (mean, std) = Judge.Statistics();
        var space = SpaceName;
        metrics.Threshold.Set(Judge.Threshold);
        metrics.Mean.WithLabels(space).Set(mean);
        metrics.Std.WithLabels(space).Set(std);
        metrics.WindowScores.Set(Judge.WindowCount);
        PublishGuard(Judge);
        metrics.LiveTensors.Set(TorchSharp.torch.Tensor.TotalCount);
    }

    /// <summary>
    /// The configured rule, or the default one, loudly, when this model cannot serve it (conformal needs
    /// 1,000 held-out scores, and older manifests have none): a rule a model cannot serve must not stop judging.
    /// </summary>
    private static ModelLoadException CannotJudge(LoadedModel model, Exception e) =>
        new($"{model.Directory}: the model loads but cannot judge ({e.GetType().Name}: {e.Message})", e);

    /// <summary>
    /// Builds what <see cref="Install"/> would, and throws it away: a promotion or rollback then refuses a version
    /// that cannot judge before it is made current, and its caller hears so, instead of the scoring loop later.
    /// </summary>
    public void CheckJudges(LoadedModel model)
    {
        try
        {
            using (scorers.Create(model)) { }
            _ = CreateJudge(model, report: false);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw CannotJudge(model, e);
        }
    }

    private RollingJudge CreateJudge(LoadedModel model, bool report = true)
    {
        var settings = Settings(judge.Value);
        RollingJudge created;
        try
        {
            created = new RollingJudge(settings, model.Manifest.Calibration);
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException)
        {
            if (report) Log.JudgeRuleUnavailable(logger, judge.Value.Rule, model.Directory, e.Message);
            created = new RollingJudge(settings with { Rule = null }, model.Manifest.Calibration);
        }
        if (report) WarnIfRuleMisfits(created.Policy, model);
        return created;
    }

    /// <summary>A diagnostic only: whatever it meets, the judge it describes judges.</summary>
    private void WarnIfRuleMisfits(ThresholdPolicy policy, LoadedModel model)
    {
        try
        {
            if (CalibrationCheck.Of(policy, model.Manifest.Calibration)?.Warning is { } warning) Log.RuleMisfitsCalibration(logger, model.Directory, warning);
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException)
        {
            logger.LogDebug(e, "No calibration check for {Directory}", model.Directory);
        }
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
        Guard = o.Guard,
        CalibrationWeight = o.CalibrationWeight,
        Floor = o.Floor,
        Rule = string.IsNullOrWhiteSpace(o.Rule) ? null : ThresholdPolicy.Parse(o.Rule),
    };

    private Device ResolveDevice()
    {
        var (device, description) = TorchRuntime.ResolveDevice(models.Value.Device);
        logger.LogInformation("Device: {Device}", description);
        return device;
    }

    public void Dispose()
    {
        Scorer?.Dispose();
        SideScorer?.Dispose();
        _model?.Dispose();
        Interlocked.Exchange(ref _pending, null)?.Dispose();
        _offered.Dispose();
    }
}
