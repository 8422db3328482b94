using System.Text.Json;
using AnomalyMonitor.Evidence;
using AnomalyMonitor.Hosting;
using AnomalyMonitor.Telemetry;
using Microsoft.Extensions.Options;

namespace AnomalyMonitor.Alerts;

/// <summary>The JSON published for each anomaly. Field names are a contract with subscribers.</summary>
public sealed record AnomalyAlert(
    string Kind, string Id, string Source, DateTimeOffset ReceivedAt, DateTimeOffset JudgedAt,
    double Score, double Threshold, double ZScore, double Mean, double Stddev, string Space,
    int ModelVersion, EvidencePaths? Evidence, long SuppressedSinceLast, IReadOnlyDictionary<string, string>? Metadata);

/// <summary>Published once when a sustained shift starts, and once when it ends.</summary>
public sealed record DriftAlert(string Kind, string State, DateTimeOffset At, double AnomalyFraction, int Items, TimeSpan Duration, int ModelVersion, string Reason);

/// <summary>
/// Turns anomalies into alerts in the outbox, with storm control: a cooldown per source and a cap per
/// minute. Suppressed anomalies are counted, and the count rides on the next alert that goes out.
/// Called from the scoring loop only.
/// </summary>
public sealed class AlertSink(IOptions<AlertsOptions> options, AlertOutbox outbox, TimeProvider time, MonitorMetrics metrics)
{
    private readonly Dictionary<string, DateTimeOffset> _lastBySource = new(StringComparer.Ordinal);
    private readonly Queue<DateTimeOffset> _lastMinute = new();
    private long _suppressed;

    public string DriftTopic => options.Value.Topic.TrimEnd('/') + "/drift";

    /// <summary>Queues an alert, or counts it as suppressed; returns whether it was queued.</summary>
    public bool Anomaly(AnomalyAlert alert, bool driftActive)
    {
        var o = options.Value;
        var now = time.GetUtcNow();
        string? reason = null;
        if (driftActive) reason = "drift";
        else if (o.Cooldown > TimeSpan.Zero && _lastBySource.TryGetValue(alert.Source, out var last) && now - last < o.Cooldown) reason = "cooldown";
        else
        {
            while (_lastMinute.Count > 0 && now - _lastMinute.Peek() >= TimeSpan.FromMinutes(1)) _lastMinute.Dequeue();
            if (_lastMinute.Count >= o.MaxPerMinute) reason = "rate_limit";
        }
        if (reason is not null)
        {
            _suppressed++;
            metrics.AlertsSuppressed.WithLabels(reason).Inc();
            return false;
        }
        _lastBySource[alert.Source] = now;
        _lastMinute.Enqueue(now);
        outbox.Add(o.Topic, JsonSerializer.SerializeToUtf8Bytes(alert with { SuppressedSinceLast = _suppressed }, AlertJson.Options), "anomaly");
        _suppressed = 0;
        return true;
    }

    public void Drift(DriftAlert alert) =>
        outbox.Add(DriftTopic, JsonSerializer.SerializeToUtf8Bytes(alert, AlertJson.Options), "drift");
}
