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

    private void Publish(LoadedModel model)
    {
        var o = options.Value;
        int version = model.Manifest.Version ?? 0;
        if (version < 1) return; // a hand-trained model outside the registry: the fleet numbers only registry versions
        try
        {
            var payload = ModelMessage.FromDirectory(model.Directory, version, o.EffectiveInstance, time.GetUtcNow());
            outbox.AddRange([new OutboxEntry(o.ModelTopic, payload, "model", Retain: true)]);
            metrics.FleetModelsPublished.Inc();
            Log.FleetModelPublished(logger, version, o.ModelTopic);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ModelLoadException or Microsoft.Data.Sqlite.SqliteException)
        {
            // The scorers keep their model; the next installation publishes again.
            Log.SinkFailed(logger, "fleet model", $"v{version}", e.Message);
        }
    }
}
