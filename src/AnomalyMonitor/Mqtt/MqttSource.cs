using System.Security.Cryptography;
using AnomalyMonitor.Core.Imaging;
using AnomalyMonitor.Hosting;
using AnomalyMonitor.Ingest;
using AnomalyMonitor.Pipeline;
using AnomalyMonitor.Telemetry;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using MQTTnet;
using MQTTnet.Protocol;

namespace AnomalyMonitor.Mqtt;

/// <summary>
/// Subscribes with MQTT 5, QoS 1 and a persistent session (clean start off, session expiry set), and
/// acknowledges each message only once every image in it has a durably recorded result. Messages not
/// acknowledged when the service stops are redelivered by the broker on the next connect.
/// </summary>
public sealed class MqttSource(
    ItemQueue queue, Quarantine quarantine, IOptions<IngestOptions> ingest, IOptions<MqttOptions> mqtt,
    TimeProvider time, MonitorMetrics metrics, ILogger<MqttSource> logger) : BackgroundService
{
    public bool Enabled => ingest.Value.Mqtt.Enabled;
    public bool Connected { get; private set; }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!Enabled) return;
        using var client = new MqttClientFactory().CreateMqttClient();
        client.ApplicationMessageReceivedAsync += e => OnMessageAsync(e, stoppingToken);
        var options = ingest.Value.Mqtt;
        await MqttSubscriber.RunAsync(client, new MqttConnection(mqtt.Value), "ingest", options.SessionExpiry, options.Topics, SetConnected, logger, stoppingToken)
            .ConfigureAwait(false);
    }

    private void SetConnected(bool connected)
    {
        Connected = connected;
        metrics.MqttConnected.WithLabels("ingest").Set(connected ? 1 : 0);
    }

    private async Task OnMessageAsync(MqttApplicationMessageReceivedEventArgs e, CancellationToken stoppingToken)
    {
        e.AutoAcknowledge = false;
        var message = e.ApplicationMessage;
        var payload = System.Buffers.BuffersExtensions.ToArray(message.Payload);
        var receivedAt = time.GetUtcNow();
        // Stable across redelivery, so a message judged again after a crash keeps its id.
        var fallbackId = $"{message.Topic}/{Convert.ToHexStringLower(SHA256.HashData(payload))[..16]}";
        IReadOnlyList<ParsedImage> images;
        try
        {
            if (payload.Length > ingest.Value.Mqtt.MaxPayloadBytes)
                throw new InputRejectedException(fallbackId, RejectReason.TooLarge, $"{payload.Length} bytes exceeds the limit of {ingest.Value.Mqtt.MaxPayloadBytes}");
            images = PayloadParser.Parse(payload, message.Topic, fallbackId);
        }
        catch (InputRejectedException r)
        {
            metrics.Rejected.WithLabels(message.Topic, r.Reason.Name()).Inc();
            metrics.Items.WithLabels(message.Topic, "rejected").Inc();
            Log.Rejected(logger, r.Item, message.Topic, r.Reason.Name(), r.Detail);
            quarantine.Keep(r.Item, payload, r.Message);
            await e.AcknowledgeAsync(CancellationToken.None).ConfigureAwait(false);
            return;
        }

        var ack = new MessageAcknowledgement(e, images.Count, quarantine, logger);
        foreach (var image in images)
        {
            var item = new IngestItem
            {
                Id = image.Id,
                Source = image.Source,
                ReceivedAt = receivedAt,
                Payload = image.Bytes,
                Metadata = image.Metadata,
                Completion = ack,
            };
            if (!await queue.WriteAsync(item, stoppingToken).ConfigureAwait(false)) return; // shutting down: stays unacknowledged
        }
    }

    /// <summary>Acknowledges the message when all of its images are done; never when one was handed back.</summary>
    private sealed class MessageAcknowledgement(MqttApplicationMessageReceivedEventArgs e, int count, Quarantine quarantine, ILogger logger) : IItemCompletion
    {
        private int _remaining = count;
        private volatile bool _handedBack;

        public void Complete(IngestItem item, ItemResult result)
        {
            if (result.Outcome == Outcome.HandedBack) _handedBack = true;
            if (result.Outcome == Outcome.Rejected) quarantine.Keep(item.Id, item.Payload.Span, $"{result.Reason?.Name()}: {result.Detail}");
            if (!item.WasHeld) Done();
        }

        public void Held(IngestItem item) => Done();

        private void Done()
        {
            if (Interlocked.Decrement(ref _remaining) != 0 || _handedBack) return;
            _ = AcknowledgeAsync();
        }

        private async Task AcknowledgeAsync()
        {
            try
            {
                await e.AcknowledgeAsync(CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                // The connection went away: the broker will redeliver, which is the safe side.
                logger.LogDebug(ex, "Acknowledgement failed");
            }
        }
    }
}
