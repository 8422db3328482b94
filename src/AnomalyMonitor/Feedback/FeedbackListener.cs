using System.Text.Json;
using AnomalyMonitor.Mqtt;
using AnomalyMonitor.Telemetry;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using MQTTnet;

namespace AnomalyMonitor.Feedback;

/// <summary>
/// Takes feedback from the MQTT topic Feedback:Topic: {"id": "...", "label": "normal" | "anomaly"}. The
/// session is persistent, so feedback published while the service is down arrives when it is back.
/// Who may publish there is the broker's business (its ACL), as for any other topic.
/// </summary>
public sealed class FeedbackListener(
    FeedbackService feedback, IOptions<FeedbackOptions> options, MqttConnection connection, TimeProvider time, MonitorMetrics metrics, ILogger<FeedbackListener> logger) : BackgroundService
{
    public bool Connected { get; private set; }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var topic = options.Value.Topic;
        if (string.IsNullOrEmpty(topic)) return;
        using var client = new MqttClientFactory().CreateMqttClient();
        client.ApplicationMessageReceivedAsync += e =>
        {
            Handle(System.Buffers.BuffersExtensions.ToArray(e.ApplicationMessage.Payload));
            return Task.CompletedTask;
        };
        await MqttSubscriber.RunAsync(client, connection, "feedback", TimeSpan.FromDays(7), [topic], SetConnected, time, metrics, logger, stoppingToken)
            .ConfigureAwait(false);
    }

    internal FeedbackReply Handle(byte[] payload)
    {
        string? id = null, label = null;
        try
        {
            using var doc = JsonDocument.Parse(payload);
            if (doc.RootElement.ValueKind == JsonValueKind.Object)
            {
                if (doc.RootElement.TryGetProperty("id", out var i) && i.ValueKind == JsonValueKind.String) id = i.GetString();
                if (doc.RootElement.TryGetProperty("label", out var l) && l.ValueKind == JsonValueKind.String) label = l.GetString();
            }
        }
        catch (JsonException)
        {
            // reported as invalid below, naming what is missing
        }
        return feedback.Apply(id, label, "mqtt");
    }

    private void SetConnected(bool connected)
    {
        Connected = connected;
        metrics.MqttConnected.WithLabels("feedback").Set(connected ? 1 : 0);
    }
}
