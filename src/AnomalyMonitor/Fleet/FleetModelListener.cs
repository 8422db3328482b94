using System.Text;
using System.Text.Json;
using AnomalyMonitor.Core.Storage;
using AnomalyMonitor.Mqtt;
using AnomalyMonitor.Pipeline;
using AnomalyMonitor.Registry;
using AnomalyMonitor.Telemetry;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using MQTTnet;

namespace AnomalyMonitor.Fleet;

/// <summary>
/// On a scorer: takes the trainer's models from the retained Fleet:ModelTopic. A message is checked whole
/// (form, size, SHA-256, input shape, then a full load that checks the parameter count) before anything
/// changes; it is saved into the local registry under the trainer's version number, with its provenance,
/// and promoted as a local promotion is: swapped in between batches, with the version's own calibration.
/// A message that fails a check is logged and counted, and the current model stays.
/// </summary>
public sealed class FleetModelListener(
    ModelRegistry registry, Promotion promotion, ModelHolder holder, IOptions<FleetOptions> options, MqttConnection connection,
    TimeProvider time, MonitorMetrics metrics, ILogger<FleetModelListener> logger) : BackgroundService
{
    public const string ProvenanceFile = "provenance.json";
    private readonly Lock _lock = new(); // one message at a time writes into the registry

    public bool Connected { get; private set; }

    /// <summary>Why the last refused model message was refused (status shows it), or null.</summary>
    public string? LastRefusal { get; private set; }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!options.Value.IsScorer) return;
        using var client = new MqttClientFactory().CreateMqttClient();
        client.ApplicationMessageReceivedAsync += e =>
        {
            var payload = e.ApplicationMessage.Payload;
            if (payload.Length == 0) return Task.CompletedTask; // the retained message was cleared
            if (payload.Length > options.Value.MaxModelBytes) Refuse("too_large", $"the message is {payload.Length} bytes, over Fleet:MaxModelBytes");
            else Handle(System.Buffers.BuffersExtensions.ToArray(payload));
            return Task.CompletedTask;
        };
        await MqttSubscriber.RunAsync(client, connection, "fleet-model", TimeSpan.FromDays(7), [options.Value.ModelTopic], c =>
        {
            Connected = c;
            metrics.MqttConnected.WithLabels("fleet-model").Set(c ? 1 : 0);
        }, time, metrics, logger, stoppingToken).ConfigureAwait(false);
    }

    /// <summary>Checks and installs one model message; false when it was refused (and counted).</summary>
    internal bool Handle(byte[] payload)
    {
        try
        {
            var (message, manifest, weights) = ModelMessage.Verify(payload, holder.InputShape);
            if (holder.Version == message.Version && holder.Fingerprint == manifest.Weights.Sha256) return true; // already judging with it
            int previous = holder.Version;
            lock (_lock)
            {
                var dir = registry.PathOf(message.Version);
                if (!SameModel(dir, manifest)) Save(dir, message, manifest, weights);
                promotion.Promote(message.Version);
                registry.Prune(holder.Version); // a scorer never retrains, so this is where its registry stays bounded
            }
            metrics.FleetModelsInstalled.Inc();
            Log.FleetModelInstalled(logger, message.Version, message.Instance, previous);
            return true;
        }
        catch (FleetModelRefused e)
        {
            Refuse(e.Reason, e.Message);
        }
        catch (ModelLoadException e)
        {
            Refuse("invalid", e.Message);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Refuse("storage", e.Message);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Whatever else a crafted message provokes (a null field, a name the file system refuses): refused, never fatal.
            Refuse("invalid", e.Message);
        }
        return false;
    }

    private void Refuse(string reason, string detail)
    {
        metrics.FleetModelsRefused.WithLabels(reason).Inc();
        LastRefusal = $"{time.GetUtcNow():u} {reason}: {detail}";
        Log.FleetModelRefused(logger, options.Value.ModelTopic, reason, detail, holder.Version);
    }

    /// <summary>Whether the local version holds this model whole: its manifest and its weights (a power loss can leave either short).</summary>
    private static bool SameModel(string dir, ModelManifest manifest)
    {
        if (!File.Exists(Path.Combine(dir, ModelFiles.ManifestFile))) return false;
        try
        {
            var local = ModelFiles.ReadManifest(dir);
            var weights = Path.Combine(dir, local.Weights.File);
            return local.Weights.Sha256 == manifest.Weights.Sha256 && File.Exists(weights) && ModelFiles.Sha256(weights) == manifest.Weights.Sha256;
        }
        catch (Exception e) when (e is ModelLoadException or IOException)
        {
            return false;
        }
    }

    /// <summary>Writes the version under a temporary name, loads it to check it, then renames it into place.</summary>
    private void Save(string dir, ModelMessage message, ModelManifest manifest, byte[] weights)
    {
        var partial = Path.Combine(registry.Root, $".v{message.Version}.partial");
        if (Directory.Exists(partial)) Directory.Delete(partial, recursive: true);
        Directory.CreateDirectory(partial);
        // Flushed to disk before the rename, as a local save is: a power loss leaves the old version or the whole new one.
        AtomicFile.Write(Path.Combine(partial, manifest.Weights.File), weights);
        AtomicFile.Write(Path.Combine(partial, ModelFiles.ManifestFile), Encoding.UTF8.GetBytes(message.Manifest.GetRawText()));
        AtomicFile.Write(Path.Combine(partial, ProvenanceFile), JsonSerializer.SerializeToUtf8Bytes(
            new Provenance("fleet", message.Instance, message.PublishedAt, time.GetUtcNow()), ModelMessage.Json));
        try
        {
            ModelFiles.Load(partial, TorchSharp.torch.CPU).Dispose(); // the parameter count and the weights' form
        }
        catch
        {
            Directory.Delete(partial, recursive: true);
            throw;
        }
        // A local version of the same number that differs (this scorer once trained alone) is set aside until the next prune.
        if (Directory.Exists(dir)) Directory.Move(dir, Path.Combine(registry.Root, $".v{message.Version}.replaced-{time.GetUtcNow().ToUnixTimeSeconds()}"));
        Directory.Move(partial, dir);
    }
}

/// <summary>Where a registry version came from: "fleet" (the trainer named) or, without this file, trained here.</summary>
public sealed record Provenance(string Origin, string Instance, DateTimeOffset PublishedAt, DateTimeOffset ReceivedAt);
