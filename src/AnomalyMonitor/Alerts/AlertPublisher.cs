using System.Text.Json;
using AnomalyMonitor.Evidence;
using AnomalyMonitor.Mqtt;
using AnomalyMonitor.State;
using AnomalyMonitor.Telemetry;
using MQTTnet;
using MQTTnet.Protocol;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace AnomalyMonitor.Alerts;

/// <summary>
/// Drains the outbox to the broker with QoS 1, oldest first; an alert leaves the outbox only once the
/// broker acknowledged it. Also owns the retained status topic: "online" on connect, "offline" on a
/// clean stop, and the same "offline" as the MQTT will when the connection dies.
/// </summary>
public sealed class AlertPublisher(
    AlertOutbox outbox, StorageHealth health, MqttConnection connection, IOptions<AlertsOptions> alerts, IOptions<Fleet.FleetOptions> fleet,
    TimeProvider time, MonitorMetrics metrics, ILogger<AlertPublisher> logger) : BackgroundService
{
    private int _statusChanged;

    /// <summary>
    /// Alerts:StatusTopic, or in a fleet StatusTopic/instance: one retained status a service, or one scorer's
    /// will ("offline") would overwrite the status of every other.
    /// </summary>
    public string StatusTopic => fleet.Value.RoleName == Fleet.FleetOptions.Standalone
        ? alerts.Value.StatusTopic
        : $"{alerts.Value.StatusTopic.TrimEnd('/')}/{fleet.Value.EffectiveInstance}";

    public bool Connected { get; private set; }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var broker = connection.Describe();
        var guard = new TakeoverGuard("alerts", connection.ClientId("alerts"), connection.Options, time, metrics, logger);
        var pause = TimeSpan.Zero;
        using var client = new MqttClientFactory().CreateMqttClient();
        client.DisconnectedAsync += e =>
        {
            if (Connected)
            {
                Log.MqttDisconnected(logger, "alerts", broker, e.Reason.ToString());
                pause = guard.Disconnected(e);
            }
            SetConnected(false);
            return Task.CompletedTask;
        };
        var reconnect = connection.Reconnect(reason => Log.MqttDisconnected(logger, "alerts", broker, reason));
        Action onHealth = () =>
        {
            Interlocked.Exchange(ref _statusChanged, 1);
            outbox.Wake();
        };
        health.Changed += onHealth;
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                if (!client.IsConnected)
                {
                    if (pause > TimeSpan.Zero) await Task.Delay(pause, time, stoppingToken).ConfigureAwait(false);
                    pause = TimeSpan.Zero;
                    await reconnect.ExecuteAsync(token => new ValueTask(ConnectAsync(client, connection, token)), stoppingToken).ConfigureAwait(false);
                    guard.Connected();
                    SetConnected(true);
                    Log.MqttConnected(logger, "alerts", broker);
                }
                try
                {
                    if (Interlocked.Exchange(ref _statusChanged, 0) == 1)
                    {
                        try
                        {
                            await PublishStatusAsync(client, stoppingToken).ConfigureAwait(false);
                        }
                        catch
                        {
                            Interlocked.Exchange(ref _statusChanged, 1); // not delivered: again on the next turn
                            throw;
                        }
                    }
                    if (outbox.Count == 0)
                    {
                        await outbox.WaitAsync(TimeSpan.FromSeconds(1), stoppingToken).ConfigureAwait(false);
                        continue;
                    }
                    await DrainAsync(client, stoppingToken).ConfigureAwait(false);
                }
                catch (Exception e) when (e is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
                {
                    metrics.AlertsFailed.Inc();
                    Log.AlertPublishFailed(logger, outbox.Count, e.Message);
                    await Task.Delay(alerts.Value.RetryInterval, time, stoppingToken).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        finally
        {
            health.Changed -= onHealth;
            await GoOfflineAsync(client).ConfigureAwait(false);
            SetConnected(false);
        }
    }

    // Under Mosquitto's default receive maximum (20): a broker disconnects a client that has more in flight.
    private const int MaxInFlight = 16;

    /// <summary>
    /// Keeps up to 16 alerts in flight, oldest first: a new alert goes out as soon as a slot frees rather than
    /// when a whole batch has been acknowledged (under load that wait was most of an alert's time from judge to
    /// subscriber), and what the broker acknowledged leaves the outbox in one commit per wake-up. Returns when
    /// nothing is left to send or in flight, or when the status must go out; throws the first failure once the
    /// rest in flight have settled, and the next drain sends again from the oldest alert still in the outbox.
    /// </summary>
    private async Task DrainAsync(IMqttClient client, CancellationToken token)
    {
        var inFlight = new List<(Task<MqttClientPublishResult> Send, OutboxMessage Message)>(MaxInFlight);
        var acked = new List<long>(MaxInFlight);
        long sentUpTo = 0;
        Exception? failure = null;
        while (true)
        {
            if (failure is null && Volatile.Read(ref _statusChanged) == 0 && inFlight.Count < MaxInFlight)
            {
                foreach (var m in outbox.PeekAfter(sentUpTo, MaxInFlight - inFlight.Count))
                {
                    inFlight.Add((Publish(client, m, token), m));
                    sentUpTo = m.Seq;
                }
            }
            if (inFlight.Count == 0) break;
            using (var wake = CancellationTokenSource.CreateLinkedTokenSource(token))
            {
                // An acknowledgement frees a slot; a new alert may fill one that is free already.
                var added = inFlight.Count < MaxInFlight && failure is null ? outbox.WaitAsync(Timeout.InfiniteTimeSpan, wake.Token) : null;
                var waits = inFlight.Select(f => (Task)f.Send);
                await Task.WhenAny(added is null ? waits : waits.Append(added)).ConfigureAwait(false);
                await wake.CancelAsync().ConfigureAwait(false);
                if (added is not null) await added.ContinueWith(static _ => { }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default).ConfigureAwait(false);
            }
            acked.Clear();
            for (int i = inFlight.Count - 1; i >= 0; i--)
            {
                var (send, message) = inFlight[i];
                if (!send.IsCompleted) continue;
                inFlight.RemoveAt(i);
                try
                {
                    var result = await send.ConfigureAwait(false);
                    if (!result.IsSuccess)
                    {
                        if (Refused(message, result.ReasonCode)) continue; // set aside: the rest goes on
                        throw new InvalidOperationException($"the broker answered {result.ReasonCode}");
                    }
                    _refusals.Remove(message.Seq);
                    acked.Add(message.Seq);
                    metrics.AlertsPublished.WithLabels(message.Kind).Inc();
                }
                catch (Exception e) when (e is not OperationCanceledException || !token.IsCancellationRequested)
                {
                    failure ??= e;
                }
            }
            outbox.RemoveRange(acked);
        }
        if (failure is not null) throw failure;
        token.ThrowIfCancellationRequested();
    }

    /// <summary>A message the broker refused this often (an ACL, an invalid topic) is set aside, not retried for ever.</summary>
    internal const int MaxRefusals = 5;
    private readonly Dictionary<long, int> _refusals = [];

    /// <summary>
    /// Counts the broker's refusal of one message; at <see cref="MaxRefusals"/> it moves to the outbox's dead letters
    /// (kept, logged, counted) and true is returned: at the head of the outbox it would hold back every alert behind it.
    /// </summary>
    private bool Refused(OutboxMessage message, MqttClientPublishReasonCode code)
    {
        int times = _refusals[message.Seq] = _refusals.GetValueOrDefault(message.Seq) + 1;
        if (times < MaxRefusals) return false;
        _refusals.Remove(message.Seq);
        var reason = $"the broker refused it {times} times ({code})";
        outbox.DeadLetter(message, reason, time.GetUtcNow());
        metrics.OutboxDeadLetters.WithLabels(message.Kind).Inc();
        Log.AlertDeadLettered(logger, message.Kind, message.Topic, message.Seq, reason);
        return true;
    }

    private static Task<MqttClientPublishResult> Publish(IMqttClient client, OutboxMessage m, CancellationToken token) =>
        client.PublishAsync(new MqttApplicationMessageBuilder()
            .WithTopic(m.Topic).WithPayload(m.Payload).WithContentType("application/json")
            .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).WithRetainFlag(m.Retain).Build(), token);

    private async Task ConnectAsync(IMqttClient client, MqttConnection connection, CancellationToken token)
    {
        var offline = Status("offline");
        var result = await MqttConnection.ConnectAsync(client, connection.Builder("alerts")
            .WithCleanStart(true)
            .WithWillTopic(StatusTopic).WithWillPayload(offline).WithWillRetain(true)
            .WithWillQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce), token).ConfigureAwait(false);
        if (result.ResultCode != MqttClientConnectResultCode.Success)
            throw new InvalidOperationException($"the broker refused the connection: {result.ResultCode}");
        Interlocked.Exchange(ref _statusChanged, 0);
        await PublishStatusAsync(client, token).ConfigureAwait(false);
    }

    /// <summary>The retained status: "online", or "degraded" with the stores that cannot write.</summary>
    private Task PublishStatusAsync(IMqttClient client, CancellationToken token) =>
        client.PublishAsync(new MqttApplicationMessageBuilder().WithTopic(StatusTopic)
            .WithPayload(health.Degraded ? Status("degraded", health.Problems) : Status("online"))
            .WithRetainFlag(true).WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build(), token);

    private async Task GoOfflineAsync(IMqttClient client)
    {
        if (!client.IsConnected) return;
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            await client.PublishAsync(new MqttApplicationMessageBuilder().WithTopic(StatusTopic).WithPayload(Status("offline"))
                .WithRetainFlag(true).WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build(), timeout.Token).ConfigureAwait(false);
            await client.DisconnectAsync(new MqttClientDisconnectOptionsBuilder().Build(), timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or MQTTnet.Exceptions.MqttCommunicationException)
        {
            // The will message says "offline" for us.
        }
    }

    private byte[] Status(string state, IReadOnlyDictionary<string, string>? problems = null) =>
        JsonSerializer.SerializeToUtf8Bytes(new { state, at = time.GetUtcNow(), instance = fleet.Value.EffectiveInstance, problems }, AlertJson.Options);

    private void SetConnected(bool connected)
    {
        Connected = connected;
        metrics.MqttConnected.WithLabels("alerts").Set(connected ? 1 : 0);
    }
}
