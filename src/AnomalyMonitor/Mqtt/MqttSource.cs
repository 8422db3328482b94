using System.Threading.Channels;
using AnomalyMonitor.Core.Imaging;
using AnomalyMonitor.Ingest;
using AnomalyMonitor.Pipeline;
using AnomalyMonitor.Pipeline.Decoding;
using AnomalyMonitor.State;
using AnomalyMonitor.Telemetry;
using MQTTnet;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace AnomalyMonitor.Mqtt;

/// <summary>
/// Subscribes with MQTT 5, QoS 1 and a persistent session (clean start off, session expiry set); each
/// message is one item, acknowledged only once every image in it has a durable result (refused images
/// are kept in state/quarantine first). A message the pipeline hands back (a failure, not a shutdown) is
/// offered again after a backoff: left unacknowledged, it would hold one of the broker's in-flight slots
/// until the next reconnect. Messages not acknowledged when the service stops are redelivered by the
/// broker on the next connect.
/// </summary>
public sealed class MqttSource(
    Intake intake, Quarantine quarantine, DurableWrite durable, IOptions<IngestOptions> ingest, MqttConnection connection, IOptions<PipelineOptions> pipeline,
    TimeProvider time, MonitorMetrics metrics, ILogger<MqttSource> logger) : BackgroundService, IIngestSource
{
    // Acknowledgements are sent by one writer, in the order they come, as many as are ready at a time:
    // no task per message, and the pipeline's threads never wait on the socket.
    private readonly Channel<Delivery> _acks = Channel.CreateUnbounded<Delivery>(new UnboundedChannelOptions { SingleReader = true });
    private CancellationToken _stopping;

    public string Name => "mqtt";
    public bool Enabled => ingest.Value.Mqtt.Enabled;
    public bool Connected { get; private set; }
    bool? IIngestSource.Connected => Enabled ? Connected : null;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!Enabled) return;
        _stopping = stoppingToken;
        using var client = new MqttClientFactory().CreateMqttClient();
        client.ApplicationMessageReceivedAsync += e =>
        {
            e.AutoAcknowledge = false;
            return SubmitAsync(new Delivery(e), stoppingToken);
        };
        var acks = Task.Run(AcknowledgeAsync, CancellationToken.None);
        var options = ingest.Value.Mqtt;
        // The pipeline has stopped (it stops first) when this one does: what it settled is acknowledged before the disconnect.
        async Task FlushAsync()
        {
            _acks.Writer.TryComplete();
            try { await acks.WaitAsync(TimeSpan.FromSeconds(5), TimeProvider.System, CancellationToken.None).ConfigureAwait(false); }
            catch (TimeoutException) { }
        }
        try
        {
            await MqttSubscriber.RunAsync(client, connection, "ingest", options.SessionExpiry, options.Topics, SetConnected, time, metrics, logger, stoppingToken, FlushAsync)
                .ConfigureAwait(false);
        }
        finally
        {
            _acks.Writer.TryComplete();
            try { await acks.WaitAsync(TimeSpan.FromSeconds(5), TimeProvider.System, CancellationToken.None).ConfigureAwait(false); }
            catch (TimeoutException) { }
        }
    }

    private void SetConnected(bool connected)
    {
        Connected = connected;
        metrics.MqttConnected.WithLabels("ingest").Set(connected ? 1 : 0);
    }

    private async Task SubmitAsync(Delivery delivery, CancellationToken stoppingToken)
    {
        var message = delivery.Message;
        // On receive the payload is one segment over an array of its own, valid after the handler returns: read in place.
        var payload = message.Payload.IsSingleSegment ? message.Payload.First : System.Buffers.BuffersExtensions.ToArray(message.Payload);
        var topic = message.Topic;
        var item = new IngestItem
        {
            Source = this,
            // Stable across redelivery, so a message judged again after a crash keeps its id; computed only when needed.
            IdFactory = i => PayloadDecoder.ContentId(topic, i.Payload.Span),
            Label = topic,
            ReceivedAt = time.GetUtcNow(),
            Payload = payload,
            State = delivery,
        };
        delivery.Current = item;
        if (payload.Length > ingest.Value.Mqtt.MaxPayloadBytes)
        {
            intake.RejectWhole(item, RejectReason.TooLarge, $"{payload.Length} bytes exceeds the limit of {ingest.Value.Mqtt.MaxPayloadBytes}");
            return;
        }
        await intake.SubmitAsync(item, stoppingToken).ConfigureAwait(false); // false at shutdown: unacknowledged, redelivered
    }

    /// <summary>Every image has a durable result: refused ones are quarantined, then the message is acknowledged (or, handed back, offered again).</summary>
    public void Settle(IngestItem item)
    {
        var delivery = (Delivery)item.State!;
        if (!delivery.IsCurrent(item)) return; // acknowledged while held for the first model, or superseded by a retry
        if (item.HandedBackAtShutdown) return; // unacknowledged: the broker redelivers it after the restart
        if (item.HandedBack) Retry(delivery, item.HandBackReason, storage: false, waiting: item.HandedBackWaiting);
        else Finish(delivery, item);
    }

    /// <summary>Learning state: every image is held in the store, so the broker can let go of the message now.</summary>
    public void Held(IngestItem item)
    {
        var delivery = (Delivery)item.State!;
        if (!delivery.IsCurrent(item) || item.HandedBackAtShutdown) return;
        if (item.HandedBack) Retry(delivery, item.HandBackReason, storage: false, waiting: item.HandedBackWaiting);
        else Finish(delivery, item);
    }

    /// <summary>Refused images of one message kept one file each; beyond this the message is kept once, whole.</summary>
    internal const int MaxQuarantinedPerMessage = 16;

    private void Finish(Delivery delivery, IngestItem item)
    {
        var rejections = item.Rejections.ToArray();
        // A batch of junk (a megabyte of "0,0,0,...") refuses element after element: one file per element
        // would be half a million files from one message. It is kept once, with the first hundred reasons.
        var keep = rejections.Length <= MaxQuarantinedPerMessage
            ? rejections.Select(r => (r.Id, r.Bytes, $"{r.Reason.Name()}: {r.Detail}"))
            : [(item.Id, item.Payload, $"{rejections.Length} images refused, the first {Math.Min(rejections.Length, 100)}:\n" + string.Join("\n", rejections.Take(100).Select(r => $"{r.Id}: {r.Reason.Name()}: {r.Detail}")))];
        foreach (var (id, bytes, reason) in keep)
        {
            if (!TryQuarantine(id, bytes.Span, reason))
            {
                // Kept nowhere yet: not acknowledged, offered again once the quarantine folder writes.
                Retry(delivery, "the quarantine folder cannot write", storage: true);
                return;
            }
        }
        if (delivery.TryFinish()) _acks.Writer.TryWrite(delivery);
    }

    private async Task AcknowledgeAsync()
    {
        var reader = _acks.Reader;
        try
        {
            while (await reader.WaitToReadAsync(CancellationToken.None).ConfigureAwait(false))
            {
                while (reader.TryRead(out var delivery))
                {
                    try
                    {
                        await delivery.Args.AcknowledgeAsync(CancellationToken.None).ConfigureAwait(false);
                    }
                    catch (Exception e) when (e is not OutOfMemoryException)
                    {
                        // The connection went away: the broker will redeliver, which is the safe side.
                        logger.LogDebug(e, "Acknowledgement failed");
                    }
                }
            }
        }
        catch (ChannelClosedException)
        {
        }
    }

    /// <summary>Keeps a refused payload with its reason; false (and the store degraded) when the quarantine folder cannot write.</summary>
    private bool TryQuarantine(string id, ReadOnlySpan<byte> payload, string reason)
    {
        var copy = payload.ToArray();
        return durable.TryOnce("quarantine", () => quarantine.Keep(id, copy, reason));
    }

    /// <summary>Offers a handed-back message again after a backoff that doubles each time; after Pipeline:MaxAttempts it is refused, quarantined and acknowledged.</summary>
    /// <param name="storage">The message was judged but its record could not be written: waiting for the disk is not a failed attempt.</param>
    /// <param name="waiting">The service cannot take it yet: no attempt, and offered again after Pipeline:RetryMaxDelay.</param>
    private void Retry(Delivery delivery, string? reason, bool storage, bool waiting = false)
    {
        if (_stopping.IsCancellationRequested) return; // unacknowledged: the broker redelivers it after the restart
        var p = pipeline.Value;
        if (!storage && !waiting) delivery.Attempts++;
        if (delivery.Attempts >= p.MaxAttempts)
        {
            var failed = new IngestItem
            {
                Source = this,
                Id = $"{delivery.Message.Topic}/attempts",
                Label = delivery.Message.Topic,
                Payload = delivery.Current!.Payload,
                State = delivery,
            };
            delivery.Current = failed;
            intake.RejectWhole(failed, RejectReason.Failed, $"handed back {delivery.Attempts} times, last: {reason}");
            return;
        }
        var delay = waiting ? p.RetryMaxDelay : TimeSpan.FromTicks(Math.Min(p.RetryMaxDelay.Ticks, p.RetryDelay.Ticks * (1L << Math.Clamp(delivery.Attempts - 1, 0, 20))));
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

    /// <summary>One received message: the item now offered for it (a retry makes a new one), and whether it was acknowledged.</summary>
    private sealed class Delivery(MqttApplicationMessageReceivedEventArgs args)
    {
        private int _finished;
        private volatile IngestItem? _current;

        public MqttApplicationMessageReceivedEventArgs Args => args;
        public MqttApplicationMessage Message => args.ApplicationMessage;
        /// <summary>Times the pipeline handed this message back.</summary>
        public int Attempts { get; set; }

        public IngestItem? Current
        {
            get => _current;
            set => _current = value;
        }

        public bool IsCurrent(IngestItem item) => ReferenceEquals(_current, item) && Volatile.Read(ref _finished) == 0;

        /// <summary>True the first time only: the message is acknowledged once.</summary>
        public bool TryFinish() => Interlocked.Exchange(ref _finished, 1) == 0;
    }
}
