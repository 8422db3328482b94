using AnomalyMonitor.Core.Evaluation;
using AnomalyMonitor.Core.Data;
using AnomalyMonitor.Core.Imaging;
using AnomalyMonitor.Core.Models;
using AnomalyMonitor.Core.Scoring;
using AnomalyMonitor.Core.Storage;
using AnomalyMonitor.Core.Training;
using AnomalyMonitor.Ingest;
using AnomalyMonitor.Registry;
using AnomalyMonitor.Samples;
using AnomalyMonitor.Telemetry;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace AnomalyMonitor.Pipeline;

/// <summary>
/// Gets the service a model: the current one; else one trained at start from Bootstrap:Data; else one
/// trained from the first Bootstrap:Samples items received (the learning state). New models are saved
/// as the next version, v&lt;N&gt;, and "current" is switched to it atomically.
/// </summary>
public sealed class Bootstrapper(
    ModelHolder holder, ModelRegistry registry, NormalSampleStore normals, IOptions<BootstrapOptions> options, IOptions<Fleet.FleetOptions> fleet,
    TimeProvider time, MonitorMetrics metrics, ILogger<Bootstrapper> logger)
{
    /// <summary>False on a fleet scorer: its first model comes from the trainer, never from its own training.</summary>
    public bool TrainsHere => !fleet.Value.IsScorer;

    private volatile bool _training;

    public bool Training => _training;
    public int SamplesNeeded => options.Value.Samples;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (LoadCurrentOrNewestValid() || !TrainsHere) return;
        var o = options.Value;
        if (string.IsNullOrWhiteSpace(o.Data)) return; // learn from the stream
        var load = DatasetLoader.Load(o.Data, new DatasetOptions { Shape = holder.InputShape, OnlyClass = o.NormalClass });
        foreach (var r in load.Rejected) Log.Rejected(logger, r.Item, "bootstrap", r.Reason.Name(), r.Detail);
        Log.BootstrapTraining(logger, load.Images.Count, load.Description);
        await TrainAsync(load.Images, load.Description, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Held items that survived a restart during learning; they are judged once the model exists.</summary>
    /// <summary>The images held for the first model before a restart; their sources already let go of them (or offer them again).</summary>
    internal IEnumerable<(ImageRef Image, float[] Pixels)> RestoreHeld() =>
        normals.HeldItems(holder.InputShape).Select(h => (new ImageRef(RestoredHeld.Item(h.ItemId, h.Source, h.ReceivedAt), h.ItemId, h.Source, null, WasHeld: true), h.Pixels));

    public Task TrainFromHeldAsync(IReadOnlyList<float[]> pixels, CancellationToken cancellationToken)
    {
        var shape = holder.InputShape;
        var set = new ImageSet(shape, pixels.SelectMany(p => p.Take(shape.PixelCount)).ToArray(), new int[pixels.Count],
            Enumerable.Range(0, pixels.Count).Select(i => $"held#{i}").ToArray());
        Log.BootstrapTraining(logger, set.Count, "the first items received");
        return TrainAsync(set, "first items received", cancellationToken);
    }

    private async Task TrainAsync(ImageSet data, string description, CancellationToken cancellationToken)
    {
        var o = options.Value;
        _training = true;
        try
        {
            int version = registry.NextVersion();
            var request = new BuildRequest
            {
                Spec = ModelSpec.Create(o.Architecture, data.Shape, o.Latent ?? Recommended.Latent(o.Architecture)),
                Training = new TrainingOptions
                {
                    Epochs = o.Epochs, MinSteps = o.MinSteps, Seed = o.Seed,
                    Score = Detector.Parse(o.Score), Augmentation = Augmentation.Parse(o.Augment), LatentComponents = o.LatentComponents,
                    LatentFits = o.LatentFits, LatentHeldOut = o.LatentHeldOut,
                },
                DataDescription = description,
                NormalClass = o.NormalClass,
                Version = version,
            };
            // Off the scoring thread: training takes minutes, and the loop's heartbeat must keep going.
            await Task.Run(() =>
            {
                using var result = Trainer.Train(data, request.Spec, request.Training, holder.Device, request.ErrorMetric, cancellationToken: cancellationToken);
                if (result.Diverged is { } diverged) Log.BootstrapDiverged(logger, diverged, result.BestEpoch);
                registry.Save(version, result.Model, ModelBuilder.Describe(result, data, request, time));
            }, cancellationToken).ConfigureAwait(false);
            registry.SetCurrent(version);
            holder.Install(registry.Load(version, holder.Device));
        }
        finally
        {
            _training = false;
        }
    }

    /// <summary>The current model, or if it cannot be loaded, the newest version that can: said loudly, in the log and in a metric.</summary>
    private bool LoadCurrentOrNewestValid()
    {
        try
        {
            if (holder.TryLoad()) return true;
        }
        catch (ModelLoadException)
        {
            // counted and logged by the holder; fall back below
        }
        var current = registry.CurrentVersion();
        // A candidate its gate refused judged worse than the model of its day: the last resort, not the first.
        foreach (var candidate in registry.List().Where(v => v.Valid && v.Version != current).OrderBy(v => v.Decision == ValidationGate.Reject ? 1 : 0).ThenByDescending(v => v.Version))
        {
            try
            {
                holder.Install(registry.Load(candidate.Version, holder.Device));
                holder.MarkFallback(current is not null);
                if (current is not null) Log.ModelFallback(logger, current.Value, candidate.Version);
                return true;
            }
            catch (ModelLoadException e)
            {
                metrics.ModelLoadFailures.Inc();
                Log.ModelLoadFailed(logger, e.Message);
            }
        }
        return false;
    }
}

/// <summary>The source of images restored from the held store: nobody waits for their verdicts but the sinks.</summary>
internal sealed class RestoredHeld : IIngestSource
{
    private static readonly RestoredHeld Instance = new();

    public string Name => "restored";

    public void Settle(IngestItem item)
    {
    }

    /// <summary>An item of one image that counts as decoded and held.</summary>
    public static IngestItem Item(string id, string label, DateTimeOffset receivedAt)
    {
        var item = new IngestItem { Source = Instance, Id = id, Label = label, ReceivedAt = receivedAt };
        item.AddImages(1);
        item.Decoded();
        item.Hold();
        return item;
    }
}
