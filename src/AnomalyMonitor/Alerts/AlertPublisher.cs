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
    AlertOutbox outbox, StorageHealth health, MqttConnection connection, IOptions<AlertsOptions> alerts, TimeProvider time,
    MonitorMetrics metrics, ILogger<AlertPublisher> logger) : BackgroundService
{
    private int _statusChanged;

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
                    // 16 in flight: under Mosquitto's default receive maximum (20); a broker disconnects a client that sends more.
                    var pending = outbox.Peek(16);
                    if (pending.Count == 0)
                    {
                        await outbox.WaitAsync(TimeSpan.FromSeconds(1), stoppingToken).ConfigureAwait(false);
                        continue;
                    }
                    await PublishAsync(client, pending, stoppingToken).ConfigureAwait(false);
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

    /// <summary>
    /// Sends the whole batch at once so the broker's acknowledgements overlap instead of costing one round trip
    /// per alert; what the broker acknowledged leaves the outbox in one commit, even when a later one failed.
    /// </summary>
    private async Task PublishAsync(IMqttClient client, IReadOnlyList<OutboxMessage> pending, CancellationToken token)
    {
        var sends = new Task<MqttClientPublishResult>[pending.Count];
        for (int i = 0; i < pending.Count; i++)
        {
            var m = pending[i];
            sends[i] = client.PublishAsync(new MqttApplicationMessageBuilder()
                .WithTopic(m.Topic).WithPayload(m.Payload).WithContentType("application/json")
                .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).WithRetainFlag(m.Retain).Build(), token);
        }
        var acked = new List<long>(pending.Count);
        Exception? failure = null;
        for (int i = 0; i < sends.Length; i++)
        {
            try
            {
                var result = await sends[i].ConfigureAwait(false);
                if (!result.IsSuccess) throw new InvalidOperationException($"the broker answered {result.ReasonCode}");
                acked.Add(pending[i].Seq);
                metrics.AlertsPublished.WithLabels(pending[i].Kind).Inc();
            }
            catch (Exception e) when (e is not OperationCanceledException || !token.IsCancellationRequested)
            {
                failure ??= e;
            }
        }
        outbox.RemoveRange(acked);
        if (failure is not null) throw failure;
    }

    private async Task ConnectAsync(IMqttClient client, MqttConnection connection, CancellationToken token)
    {
        var offline = Status("offline");
        var result = await client.ConnectAsync(connection.Builder("alerts")
            .WithCleanStart(true)
            .WithWillTopic(alerts.Value.StatusTopic).WithWillPayload(offline).WithWillRetain(true)
            .WithWillQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce)
            .Build(), token).ConfigureAwait(false);
        if (result.ResultCode != MqttClientConnectResultCode.Success)
            throw new InvalidOperationException($"the broker refused the connection: {result.ResultCode}");
        Interlocked.Exchange(ref _statusChanged, 0);
        await PublishStatusAsync(client, token).ConfigureAwait(false);
    }

    /// <summary>The retained status: "online", or "degraded" with the stores that cannot write.</summary>
    private Task PublishStatusAsync(IMqttClient client, CancellationToken token) =>
        client.PublishAsync(new MqttApplicationMessageBuilder().WithTopic(alerts.Value.StatusTopic)
            .WithPayload(health.Degraded ? Status("degraded", health.Problems) : Status("online"))
            .WithRetainFlag(true).WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build(), token);

    private async Task GoOfflineAsync(IMqttClient client)
    {
        if (!client.IsConnected) return;
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            await client.PublishAsync(new MqttApplicationMessageBuilder().WithTopic(alerts.Value.StatusTopic).WithPayload(Status("offline"))
                .WithRetainFlag(true).WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build(), timeout.Token).ConfigureAwait(false);
            await client.DisconnectAsync(new MqttClientDisconnectOptionsBuilder().Build(), timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or MQTTnet.Exceptions.MqttCommunicationException)
        {
            // The will message says "offline" for us.
        }
    }

    private byte[] Status(string state, IReadOnlyDictionary<string, string>? problems = null) =>
        JsonSerializer.SerializeToUtf8Bytes(new { state, at = time.GetUtcNow(), problems }, AlertJson.Options);

    private void SetConnected(bool connected)
    {
        Connected = connected;
        metrics.MqttConnected.WithLabels("alerts").Set(connected ? 1 : 0);
    }
}
