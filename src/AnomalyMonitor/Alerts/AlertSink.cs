using System.Text.Json;
using AnomalyMonitor.Evidence;
using AnomalyMonitor.Pipeline;
using AnomalyMonitor.Sinks;
using AnomalyMonitor.State;
using AnomalyMonitor.Telemetry;
using Microsoft.Extensions.Options;

namespace AnomalyMonitor.Alerts;

/// <summary>The JSON published for each anomaly. Field names are a contract with subscribers.</summary>
public sealed record AnomalyAlert(
    string Kind, string Id, string Source, DateTimeOffset ReceivedAt, DateTimeOffset JudgedAt,
    double Score, double Threshold, double ZScore, double Mean, double Stddev, string Space,
    int ModelVersion, EvidencePaths? Evidence, long SuppressedSinceLast, IReadOnlyDictionary<string, string>? Metadata,
    string? ScoreKind = null, double? ReconstructionError = null, double? LatentScore = null, string? Instance = null);

/// <summary>Published once when a sustained shift starts, and once when it ends.</summary>
public sealed record DriftAlert(string Kind, string State, DateTimeOffset At, double AnomalyFraction, int Items, TimeSpan Duration, int ModelVersion, string Reason, string? Instance = null);

/// <summary>
/// Turns a batch's anomalies (after storm control) and drift changes into alerts, and stores them in the
/// outbox in one transaction. Durable: an anomaly is acknowledged to its source only once its alert is on disk.
/// </summary>
internal sealed class AlertSink(IOptions<AlertsOptions> options, IOptions<Fleet.FleetOptions> fleet, StormControl storm, AlertOutbox outbox, DurableWrite durable, MonitorMetrics metrics) : IVerdictSink
{
    public bool Durable => true;

    /// <summary>Alerts name the evidence files, so the evidence sink runs first.</summary>
    public bool ReadsEarlierSinks => true;

    /// <summary>Which service sent it: on a shared broker, whose evidence folder the alert's paths are in.</summary>
    private string Instance => fleet.Value.EffectiveInstance;

    public string DriftTopic => options.Value.Topic.TrimEnd('/') + "/drift";

    public async ValueTask WriteAsync(JudgedBatch batch, CancellationToken cancellationToken)
    {
        var messages = new List<OutboxEntry>();
        for (int i = 0; i < batch.Count; i++)
        {
            if (!batch.Verdicts[i].IsAnomaly) continue;
            var alert = batch.Alert(i);
            if (storm.Suppress(alert.Source, batch.DuringDrift[i]) is { } reason)
            {
                metrics.AlertsSuppressed.WithLabels(reason).Inc();
                continue;
            }
            messages.Add(new OutboxEntry(options.Value.Topic, JsonSerializer.SerializeToUtf8Bytes(alert with { SuppressedSinceLast = storm.TakeSuppressed(), Instance = Instance }, AlertJson.Options), "anomaly"));
        }
        foreach (var drift in batch.DriftAlerts)
            messages.Add(new OutboxEntry(DriftTopic, JsonSerializer.SerializeToUtf8Bytes(drift with { Instance = Instance }, AlertJson.Options), "drift"));
        if (messages.Count > 0) await durable.RunAsync("outbox", () => outbox.AddRange(messages), cancellationToken).ConfigureAwait(false);
    }
}
