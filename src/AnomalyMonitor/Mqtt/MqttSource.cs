using System.Security.Cryptography;
using AnomalyMonitor.Core.Imaging;
using AnomalyMonitor.Ingest;
using AnomalyMonitor.Pipeline;
using AnomalyMonitor.State;
using AnomalyMonitor.Telemetry;
using MQTTnet;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace AnomalyMonitor.Mqtt;

/// <summary>
/// Subscribes with MQTT 5, QoS 1 and a persistent session (clean start off, session expiry set), and
/// acknowledges each message only once every image in it has a durably recorded result. A message the
/// pipeline hands back (a failure, not a shutdown) is offered again after a backoff: left unacknowledged,
/// it would hold one of the broker's in-flight slots until the next reconnect. Messages not acknowledged
/// when the service stops are redelivered by the broker on the next connect.
/// </summary>
public sealed class MqttSource(
    ItemQueue queue, Quarantine quarantine, DurableWrite durable, IOptions<IngestOptions> ingest, MqttConnection connection, IOptions<PipelineOptions> pipeline,
    TimeProvider time, MonitorMetrics metrics, ILogger<MqttSource> logger) : BackgroundService
{
    private CancellationToken _stopping;

    public bool Enabled => ingest.Value.Mqtt.Enabled;
    public bool Connected { get; private set; }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!Enabled) return;
        _stopping = stoppingToken;
        using var client = new MqttClientFactory().CreateMqttClient();
        client.ApplicationMessageReceivedAsync += e =>
        {
            e.AutoAcknowledge = false;
            return SubmitAsync(new Delivery(this, e), stoppingToken);
        };
        var options = ingest.Value.Mqtt;
        await MqttSubscriber.RunAsync(client, connection, "ingest", options.SessionExpiry, options.Topics, SetConnected, time, metrics, logger, stoppingToken)
            .ConfigureAwait(false);
    }

    private void SetConnected(bool connected)
    {
        Connected = connected;
        metrics.MqttConnected.WithLabels("ingest").Set(connected ? 1 : 0);
    }

    private async Task SubmitAsync(Delivery delivery, CancellationToken stoppingToken)
    {
        var message = delivery.Message;
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
            metrics.CountRejected(message.Topic, r.Reason);
            Log.Rejected(logger, r.Item, message.Topic, r.Reason.Name(), r.Detail);
            delivery.Begin(0);
            if (TryQuarantine(r.Item, payload, r.Message)) await delivery.AcknowledgeAsync().ConfigureAwait(false);
            else Retry(delivery, "the quarantine folder cannot write", storage: true);
            return;
        }

        delivery.Begin(images.Count);
        foreach (var image in images)
        {
            var item = new IngestItem
            {
                Id = image.Id,
                Source = image.Source,
                ReceivedAt = receivedAt,
                Payload = image.Bytes,
                Metadata = image.Metadata,
                Completion = delivery,
            };
            if (!await queue.WriteAsync(item, stoppingToken).ConfigureAwait(false)) return; // shutting down: stays unacknowledged
        }
    }

    private void AcknowledgementFailed(Exception e) => logger.LogDebug(e, "Acknowledgement failed");

    /// <summary>Keeps a refused payload with its reason; false (and the store degraded) when the quarantine folder cannot write.</summary>
    private bool TryQuarantine(string id, ReadOnlySpan<byte> payload, string reason)
    {
        var copy = payload.ToArray();
        return durable.TryOnce("quarantine", () => quarantine.Keep(id, copy, reason));
    }

    /// <summary>Offers a handed-back message again after a backoff that doubles each time; after Pipeline:MaxAttempts it is quarantined and acknowledged.</summary>
    /// <param name="storage">The message was judged but its record could not be written: waiting for the disk is not a failed attempt.</param>
    private void Retry(Delivery delivery, string? reason, bool storage)
    {
        if (_stopping.IsCancellationRequested) return; // unacknowledged: the broker redelivers it after the restart
        var p = pipeline.Value;
        if (!storage) delivery.Attempts++;
        if (delivery.Attempts >= p.MaxAttempts)
        {
            var id = $"{delivery.Message.Topic}/attempts";
            metrics.CountRejected(delivery.Message.Topic, RejectReason.Failed);
            Log.Rejected(logger, id, delivery.Message.Topic, RejectReason.Failed.Name(), $"handed back {delivery.Attempts} times, last: {reason}");
            if (TryQuarantine(id, System.Buffers.BuffersExtensions.ToArray(delivery.Message.Payload), $"failed: handed back {delivery.Attempts} times, last: {reason}"))
            {
                _ = delivery.AcknowledgeAsync();
                return;
            }
        }
        var delay = TimeSpan.FromTicks(Math.Min(p.RetryMaxDelay.Ticks, p.RetryDelay.Ticks * (1L << Math.Clamp(delivery.Attempts - 1, 0, 20))));
        _ = Task.Run(async () =>
        {
            try
            {
                await Task.Delay(delay, time, _stopping).ConfigureAwait(false);
                await SubmitAsync(delivery, _stopping).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // shutting down: unacknowledged, redelivered after the restart
            }
        }, CancellationToken.None);
    }

    /// <summary>
    /// One received message and its images' results: acknowledged when all are done; offered again when one
    /// was handed back. Completions arrive from the pipeline's threads.
    /// </summary>
    private sealed class Delivery(MqttSource owner, MqttApplicationMessageReceivedEventArgs e) : IItemCompletion
    {
        private int _remaining;
        private int _handedBack;
        private bool _storage;
        private string? _reason;

        public MqttApplicationMessage Message => e.ApplicationMessage;
        /// <summary>Times the pipeline handed this message back.</summary>
        public int Attempts { get; set; }

        public void Begin(int count)
        {
            _handedBack = 0;
            _storage = false;
            Volatile.Write(ref _remaining, count);
        }

        public void Complete(IngestItem item, ItemResult result)
        {
            if (result.Outcome == Outcome.HandedBack)
            {
                _reason = result.Detail;
                Volatile.Write(ref _handedBack, 1);
            }
            if (result.Outcome == Outcome.Rejected && !owner.TryQuarantine(item.Id, item.Payload.Span, $"{result.Reason?.Name()}: {result.Detail}"))
            {
                // Kept nowhere yet: not acknowledged, offered again once the quarantine folder writes.
                _reason = "the quarantine folder cannot write";
                _storage = true;
                Volatile.Write(ref _handedBack, 1);
            }
            if (!item.WasHeld) Done();
        }

        public void Held(IngestItem item) => Done();

        private void Done()
        {
            if (Interlocked.Decrement(ref _remaining) != 0) return;
            if (Volatile.Read(ref _handedBack) == 1) owner.Retry(this, _reason, _storage);
            else _ = AcknowledgeAsync();
        }

        public async Task AcknowledgeAsync()
        {
            try
            {
                await e.AcknowledgeAsync(CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                // The connection went away: the broker will redeliver, which is the safe side.
                owner.AcknowledgementFailed(ex);
            }
        }
    }
}
