using AnomalyMonitor.Feedback;
using AnomalyMonitor.Mqtt;
using AnomalyMonitor.Pipeline;
using AnomalyMonitor.Samples;
using AnomalyMonitor.State;
using AnomalyMonitor.Telemetry;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using MQTTnet;

namespace AnomalyMonitor.Fleet;

/// <summary>
/// On the trainer: stores the scorers' accepted normals from Fleet:SamplesTopic in its sample store, with
/// their provenance, so that it retrains on what the whole fleet accepted. The session is persistent and
/// the message is acknowledged only after the store's commit, so no sample is lost across a restart.
/// A message that does not read is counted as rejected (source "fleet") and dropped.
/// </summary>
public sealed class FleetSampleListener(
    NormalSampleStore store, ModelHolder holder, DurableWrite durable, IOptions<FleetOptions> options, MqttConnection connection,
    TimeProvider time, MonitorMetrics metrics, ILogger<FleetSampleListener> logger) : BackgroundService
{
    public bool Connected { get; private set; }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!options.Value.IsTrainer) return;
        using var client = new MqttClientFactory().CreateMqttClient();
        client.ApplicationMessageReceivedAsync += async e =>
        {
            e.AutoAcknowledge = false;
            if (e.ApplicationMessage.Payload.Length > options.Value.MaxSampleMessageBytes)
            {
                // Refused unread (and acknowledged), or it would come back on every reconnect.
                metrics.Rejected.WithLabels("fleet", "too_large").Inc();
                Log.Rejected(logger, options.Value.SamplesTopic, "fleet", "too_large", $"the message is {e.ApplicationMessage.Payload.Length} bytes, over Fleet:MaxSampleMessageBytes");
                await e.AcknowledgeAsync(stoppingToken).ConfigureAwait(false);
                return;
            }
            if (await HandleAsync(System.Buffers.BuffersExtensions.ToArray(e.ApplicationMessage.Payload), stoppingToken).ConfigureAwait(false))
                await e.AcknowledgeAsync(stoppingToken).ConfigureAwait(false);
        };
        await MqttSubscriber.RunAsync(client, connection, "fleet-samples", TimeSpan.FromDays(7), [options.Value.SamplesTopic], c =>
        {
            Connected = c;
            metrics.MqttConnected.WithLabels("fleet-samples").Set(c ? 1 : 0);
        }, time, metrics, logger, stoppingToken).ConfigureAwait(false);
    }

    /// <summary>A label a scorer was given: on the trainer's copy of the sample, or on the pixels the scorer sent.</summary>
    private void Apply(string instance, SampleMessage.Feedback label)
    {
        var id = $"{instance}:{label.Id}";
        var shape = holder.InputShape;
        string result;
        try
        {
            FeedbackLabel? parsed = label.Label switch { "anomaly" => FeedbackLabel.Anomaly, "normal" => FeedbackLabel.Normal, _ => null };
            var pixels = parsed is null ? null : label.Pixels is null ? store.Find(id, shape) : SampleMessage.Pixels(label.Pixels, id, shape);
            if (parsed is null) result = FeedbackReply.Invalid;
            else if (pixels is null) result = FeedbackReply.UnknownId;
            else
            {
                store.Label(id, parsed.Value, "fleet", label.At, shape, pixels, label.Score, label.ModelVersion);
                result = FeedbackReply.Applied;
            }
        }
        catch (Exception e) when (e is InvalidDataException or FormatException or Microsoft.Data.Sqlite.SqliteException)
        {
            result = FeedbackReply.Invalid;
        }
        metrics.Feedback.WithLabels("fleet", label.Label is "normal" or "anomaly" ? label.Label : "invalid", result).Inc();
        Log.FeedbackApplied(logger, label.Label, id, "fleet", result);
    }

    /// <summary>False only when the service stopped before the samples were stored (the broker sends them again).</summary>
    internal async Task<bool> HandleAsync(byte[] payload, CancellationToken cancellationToken)
    {
        List<NewSample> samples;
        SampleMessage message;
        try
        {
            (message, samples) = SampleMessage.Decode(payload, holder.InputShape, time.GetUtcNow());
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // A message that does not read is dropped (acknowledged), or it would come back on every reconnect.
            metrics.Rejected.WithLabels("fleet", "corrupt").Inc();
            Log.Rejected(logger, options.Value.SamplesTopic, "fleet", "corrupt", e.Message);
            return true;
        }
        try
        {
            if (samples.Count > 0) await durable.RunAsync("normal_store", () => store.AddRange(samples, holder.InputShape), cancellationToken).ConfigureAwait(false);
            foreach (var label in message.Labels ?? []) if (label is not null) Apply(message.Instance, label);
            return true;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return false;
        }
    }
}
