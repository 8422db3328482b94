using System.Diagnostics;
using System.Text.Json;
using AnomalyMonitor.Core.Data;
using AnomalyMonitor.Core.Evaluation;
using AnomalyMonitor.Core.Scoring;
using AnomalyMonitor.Core.Storage;
using AnomalyMonitor.Core.Thresholds;
using AnomalyMonitor.Core.Training;
using AnomalyMonitor.Pipeline;
using AnomalyMonitor.Registry;
using AnomalyMonitor.Samples;
using AnomalyMonitor.Telemetry;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace AnomalyMonitor.Retraining;

/// <summary>What the Quartz job calls; an interface so that the schedule can be tested on its own.</summary>
public interface IRetrainRunner
{
    Task<RetrainOutcome> RunAsync(bool force, CancellationToken cancellationToken);
}

/// <summary>
/// One retraining run: snapshot the normal-sample store (old enough, no confirmed anomalies), train a
/// candidate on its own thread with Retrain:Threads Torch threads while scoring goes on, score candidate
/// and current model on the same held-out samples, save the candidate as the next version with the
/// gate's numbers, and promote it only if the gate says so.
/// </summary>
public sealed class Retrainer(
    ModelRegistry registry, ModelHolder holder, Promotion promotion, NormalSampleStore store, IOptions<RetrainOptions> options,
    IOptions<Fleet.FleetOptions> fleet, IHostApplicationLifetime lifetime, TimeProvider time, MonitorMetrics metrics, ILogger<Retrainer> logger) : IRetrainRunner
{
    private const int HistoryLength = 50;
    private readonly Lock _historyLock = new();
    private readonly LinkedList<RetrainOutcome> _history = new();
    private int _running;
    private int _maxConcurrent;
    private int _unsuccessful;

    public bool Running => Volatile.Read(ref _running) > 0;
    /// <summary>The most runs ever seen at once: Quartz's DisallowConcurrentExecution keeps it at 1.</summary>
    public int MaxConcurrent => Volatile.Read(ref _maxConcurrent);

    /// <summary>Runs since start, newest first.</summary>
    public IReadOnlyList<RetrainOutcome> History
    {
        get { lock (_historyLock) return [.. _history]; }
    }

    public async Task<RetrainOutcome> RunAsync(bool force, CancellationToken cancellationToken)
    {
        int now = Interlocked.Increment(ref _running);
        InterlockedMax(ref _maxConcurrent, now);
        metrics.RetrainRunning.Set(1);
        var clock = Stopwatch.StartNew();
        RetrainOutcome outcome;
        // Shutdown cancels training; the current model is untouched until a promotion, which comes last.
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, lifetime.ApplicationStopping);
        try
        {
            outcome = await RunCoreAsync(force, linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            outcome = new RetrainOutcome(RetrainOutcome.Cancelled, "cancelled (the service is stopping); the current model is unchanged", time.GetUtcNow(), clock.Elapsed.TotalSeconds, 0);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            Log.RetrainFailed(logger, e, e.Message);
            outcome = new RetrainOutcome(RetrainOutcome.Failed, e.Message, time.GetUtcNow(), clock.Elapsed.TotalSeconds, 0);
        }
        finally
        {
            if (Interlocked.Decrement(ref _running) == 0) metrics.RetrainRunning.Set(0);
        }
        Record(outcome);
        return outcome;
    }

    /// <summary>Test hook: runs between the gate and the promotion (an operator's rollback at that instant cannot be timed otherwise).</summary>
    internal Action? BeforePromotion { get; set; }

    private async Task<RetrainOutcome> RunCoreAsync(bool force, CancellationToken cancellationToken)
    {
        var o = options.Value;
        var clock = Stopwatch.StartNew();
        RetrainOutcome Skip(string why, int samples = 0) => new(RetrainOutcome.Skipped, why, time.GetUtcNow(), clock.Elapsed.TotalSeconds, samples);

        if (fleet.Value.IsScorer) return Skip($"this instance is a fleet scorer: the trainer retrains for the fleet, and its models arrive on {fleet.Value.ModelTopic}");
        // A version promoted a moment ago (the last run, a rollback) swaps in at the scoring loop's next batch boundary.
        // Gated against the model it replaces, this run would find its parent superseded at the end and be wasted.
        if (!await PendingInstalledAsync(cancellationToken).ConfigureAwait(false))
            return Skip($"v{registry.CurrentVersion()} was made current but the scoring loop has not installed it within {PendingWait.TotalSeconds:0} s");
        if (holder.Model is not { } current) return Skip("there is no model yet: the service is still learning its first one");
        long fresh = store.CountSince(store.HighWater);
        if (!force && fresh < o.MinNewSamples)
            return Skip($"{fresh} new sample(s) since the last run; Retrain:MinNewSamples is {o.MinNewSamples}");

        var snapshot = store.Snapshot(current.Shape, time.GetUtcNow() - o.QuarantineAge);
        var (train, holdout) = Split(snapshot, o.Holdout);
        if (snapshot.Images.Count < o.MinSamples || train.Length < 2 || holdout.Length < 1)
        {
            // A full store turns over faster than the quarantine when normals arrive quickly: then no run ever trains.
            var turnover = o.QuarantineAge > TimeSpan.Zero && store.Count >= store.Capacity
                ? $"; the store is full (NormalStore:Capacity {store.Capacity}) and {store.Count - snapshot.Images.Count} of its samples are younger than the quarantine: raise NormalStore:Capacity or lower Retrain:QuarantineAge"
                : "";
            return Skip($"{snapshot.Images.Count} sample(s) old enough to train on (Retrain:QuarantineAge {o.QuarantineAge}); Retrain:MinSamples is {o.MinSamples}{turnover}", snapshot.Images.Count);
        }

        registry.AdoptStandalone();
        int version = registry.NextVersion();
        Log.RetrainStarted(logger, version, train.Length, holdout.Length, o.Threads);
        // A dedicated thread, not the pool: training runs for minutes. libtorch's thread count (OpenMP) belongs to the
        // thread that sets it, and also becomes the default of threads created later; ModelHolder.ApplyScoringThreads
        // re-asserts the scoring loop's own count before each batch, so this run's count cannot leak into scoring.
        var (gate, bestLoss) = await Task.Factory.StartNew(
            () => TrainAndJudge(current, snapshot, train, holdout, version, cancellationToken),
            cancellationToken, TaskCreationOptions.LongRunning, TaskScheduler.Default).ConfigureAwait(false);

        store.HighWater = snapshot.HighWater;
        BeforePromotion?.Invoke();
        int parent = current.Manifest.Version ?? 0;
        bool superseded = gate.Promoted && !promotion.PromoteIfCurrent(version, parent);
        registry.Prune(holder.Version);
        metrics.RetrainDuration.Observe(clock.Elapsed.TotalSeconds);
        if (double.IsFinite(bestLoss)) metrics.RetrainLastLoss.Set(bestLoss);
        // Not the candidate's failure, so not counted as unsuccessful: the gate's comparison no longer applies.
        if (superseded)
            return new RetrainOutcome(RetrainOutcome.Skipped, $"v{version} passed its gate against v{parent}, but v{registry.CurrentVersion()} was made current during the run (a rollback or a fleet model); it is kept, not promoted",
                time.GetUtcNow(), clock.Elapsed.TotalSeconds, train.Length, version, parent, bestLoss, gate);
        return new RetrainOutcome(gate.Promoted ? RetrainOutcome.Promoted : RetrainOutcome.Rejected, gate.Reason, time.GetUtcNow(),
            clock.Elapsed.TotalSeconds, train.Length, version, parent, bestLoss, gate);
    }

    private static readonly TimeSpan PendingWait = TimeSpan.FromSeconds(30);

    private async Task<bool> PendingInstalledAsync(CancellationToken cancellationToken)
    {
        var waited = Stopwatch.StartNew();
        while (holder.HasPending)
        {
            if (waited.Elapsed > PendingWait) return false;
            await Task.Delay(TimeSpan.FromMilliseconds(20), cancellationToken).ConfigureAwait(false);
        }
        return true;
    }

    private (GateReport Gate, double BestLoss) TrainAndJudge(LoadedModel current, TrainingSnapshot snapshot, int[] train, int[] holdout,
        int version, CancellationToken cancellationToken)
    {
        var o = options.Value;
        TorchSharp.torch.set_num_threads(o.Threads);
        var device = holder.Device;
        var trainSet = snapshot.Images.Subset(train);
        var holdoutSet = snapshot.Images.Subset(holdout);
        var manifest = current.Manifest;
        var request = new BuildRequest
        {
            Spec = current.Spec,
            // The candidate is of the current model's line: same architecture, loss, moves and score; the budget is Retrain:'s.
            Training = TrainingOptions.Like(manifest) with { Epochs = o.Epochs, MinSteps = o.MinSteps, Patience = o.Patience, BatchSize = o.BatchSize, Seed = o.Seed },
            ErrorMetric = manifest.ErrorMetric,
            Threshold = current.Threshold,
            DataDescription = snapshot.Description,
            Version = version,
            ParentVersion = manifest.Version ?? 0,
        };

        TrainingResult result;
        try
        {
            result = Trainer.Train(trainSet, request.Spec, request.Training, device, request.ErrorMetric, cancellationToken: cancellationToken);
        }
        catch (TrainingDivergedException e)
        {
            return (new GateReport { Decision = ValidationGate.Reject, Reason = e.Message, Holdout = holdout.Length, CandidateMeanError = double.NaN }, double.NaN);
        }
        using (result)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var anomalies = store.ConfirmedAnomalies(current.Shape);
            var anomalySet = ImageSetOf(current, anomalies);
            var candidateScorer = new Scorer(result.Model, device, current.Shape, request.ErrorMetric, result.Detector);
            var candidateHeldOut = candidateScorer.Score(holdoutSet, 0, holdoutSet.Count, detailed: false, 256, cancellationToken);
            var candidateNormal = candidateHeldOut.Errors;
            var candidateAnomalies = anomalySet.Count > 0 ? candidateScorer.Score(anomalySet, 256, cancellationToken) : [];
            // The current model is loaded afresh: the scoring loop's copy belongs to the scoring thread.
            using var currentCopy = ModelFiles.Load(current.Directory, device);
            var currentScorer = currentCopy.CreateScorer();
            var currentHeldOut = currentScorer.Score(holdoutSet, 0, holdoutSet.Count, detailed: false, 256, cancellationToken);
            var currentAnomalies = anomalySet.Count > 0 ? currentScorer.Score(anomalySet, 256, cancellationToken) : [];

            // Each model ranks by its own score (the AUROC test); the held-out test compares the part of it that means the
            // same for both models: the reconstruction error, or the latent score (about 1 for normals of a model that generalises).
            var gate = ValidationGate.Decide(ValidationGate.Comparable(candidateHeldOut, result.Detector.Score), ValidationGate.Comparable(currentHeldOut, currentCopy.Detector.Score),
                candidateAnomalies, currentAnomalies, new GateSettings(o.Tolerance, o.AurocTolerance, o.MinConfirmedAnomalies),
                candidateNormal, currentHeldOut.Errors);
            if (result.Diverged is { } diverged)
                gate = gate with { Decision = ValidationGate.Reject, Reason = $"training diverged: {diverged}" };
            metrics.GateMeanError.WithLabels("candidate").Set(gate.CandidateMeanError);
            if (gate.CurrentMeanError is { } m) metrics.GateMeanError.WithLabels("current").Set(m);

            var described = ModelBuilder.Describe(result, trainSet, request, time);
            var candidate = described with
            {
                // The threshold restarts from these held-out errors when this version is promoted or rolled back to.
                Calibration = candidateNormal.All(float.IsFinite) ? CalibrationStats.From(candidateNormal, "holdout") : described.Calibration,
                Data = new DataProvenance(snapshot.Fingerprint, snapshot.Description, trainSet.Count, null),
                Extra = new Dictionary<string, JsonElement>
                {
                    ["gate"] = JsonSerializer.SerializeToElement(gate, ModelManifest.Json),
                    ["store"] = JsonSerializer.SerializeToElement(new
                    {
                        highWater = snapshot.HighWater, trained = train.Length, heldOut = holdout.Length,
                        excludedAnomalies = snapshot.Excluded, quarantineAge = o.QuarantineAge.ToString(),
                    }, ModelManifest.Json),
                },
            };
            registry.Save(version, result.Model, candidate);
            double best = result.History.Where(h => h.Best).Select(h => h.ValidationLoss ?? h.Loss).DefaultIfEmpty(double.NaN).Last();
            return (gate, best);
        }
    }

    private static ImageSet ImageSetOf(LoadedModel model, IReadOnlyList<float[]> images) =>
        new(model.Shape, [.. images.SelectMany(p => p)], new int[images.Count], [.. Enumerable.Range(0, images.Count).Select(i => $"confirmed#{i}")]);

    /// <summary>
    /// A sample is held out by a hash of its sequence number, so it stays held out in every run: no
    /// retrained model has ever trained on the samples it is compared on.
    /// </summary>
    internal static (int[] Train, int[] Holdout) Split(TrainingSnapshot snapshot, double fraction)
    {
        var train = new List<int>();
        var holdout = new List<int>();
        for (int i = 0; i < snapshot.Seqs.Length; i++)
        {
            ulong h = unchecked((ulong)snapshot.Seqs[i] * 0x9E3779B97F4A7C15UL) >> 40;
            (h % 10_000 < fraction * 10_000 ? holdout : train).Add(i);
        }
        return ([.. train], [.. holdout]);
    }

    private void Record(RetrainOutcome outcome)
    {
        metrics.Retrains.WithLabels(outcome.Result).Inc();
        if (outcome.Result == RetrainOutcome.Promoted) _unsuccessful = 0;
        else if (outcome.Result is RetrainOutcome.Rejected or RetrainOutcome.Failed) _unsuccessful++;
        metrics.RetrainUnsuccessful.Set(_unsuccessful);
        Log.RetrainOutcome(logger, outcome.Result, outcome.Reason);
        lock (_historyLock)
        {
            _history.AddFirst(outcome);
            if (_history.Count > HistoryLength) _history.RemoveLast();
        }
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int seen;
        while ((seen = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, seen) != seen) { }
    }
}
