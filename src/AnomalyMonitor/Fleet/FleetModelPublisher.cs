using AnomalyMonitor.Alerts;
using AnomalyMonitor.Core.Storage;
using AnomalyMonitor.Pipeline;
using AnomalyMonitor.Telemetry;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace AnomalyMonitor.Fleet;

/// <summary>
/// On the trainer: every model it installs (the first one, a promotion, a rollback, the one loaded at start)
/// goes into the outbox as the retained message on Fleet:ModelTopic. Through the outbox, it survives a
/// broker outage and a crash, and a scorer that connects later gets the current model from the broker.
/// Also announces this instance's name and role (anomaly_monitor_instance_info), in every role.
/// </summary>
public sealed class FleetModelPublisher(
    ModelHolder holder, AlertOutbox outbox, IOptions<FleetOptions> options, TimeProvider time, MonitorMetrics metrics,
    ILogger<FleetModelPublisher> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        var o = options.Value;
        metrics.InstanceInfo.WithLabels(o.EffectiveInstance, o.RoleName).Set(1);
        if (o.IsTrainer) holder.Installed += Publish;
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        holder.Installed -= Publish;
        return Task.CompletedTask;
    }

    private readonly Lock _lock = new();
    private Task _publishing = Task.CompletedTask;

    /// <summary>
    /// Called on the scoring thread: reading and encoding the weights happens on the pool, one version after
    /// another in the order installed, so scoring does not wait and the newest version is queued last.
    /// </summary>
    private void Publish(LoadedModel model)
    {
        int version = model.Manifest.Version ?? 0;
        if (version < 1) return; // a hand-trained model outside the registry: the fleet numbers only registry versions
        var directory = model.Directory;
        lock (_lock) _publishing = _publishing.ContinueWith(_ => PublishNow(directory, version), CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
    }

    /// <summary>Completes once every version installed so far is in the outbox (tests wait on it).</summary>
    public Task Published { get { lock (_lock) return _publishing; } }

    private void PublishNow(string directory, int version)
    {
        var o = options.Value;
        try
        {
            var payload = ModelMessage.FromDirectory(directory, version, o.EffectiveInstance, time.GetUtcNow());
            // Replaces a version still waiting: the retained topic must end on the newest, never an older one sent late.
            outbox.ReplaceRetained(new OutboxEntry(o.ModelTopic, payload, "model", Retain: true));
            metrics.FleetModelsPublished.Inc();
            Log.FleetModelPublished(logger, version, o.ModelTopic);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // The scorers keep their model; the next installation publishes again.
            Log.SinkFailed(logger, "fleet model", $"v{version}", e.Message);
        }
    }
}
