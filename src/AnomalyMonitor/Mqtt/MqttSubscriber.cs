using AnomalyMonitor.Telemetry;
using Microsoft.Extensions.Logging;
using MQTTnet;
using MQTTnet.Protocol;

namespace AnomalyMonitor.Mqtt;

/// <summary>
/// Keeps one subscriber connected until the service stops: connect with a persistent session (clean start
/// off, so QoS 1 messages sent while away are delivered on return), subscribe, report, wait for the
/// connection to drop, and again, with the connection's backoff, and a longer one while another client
/// keeps taking the session (see TakeoverGuard). Used by the image source and the feedback topic; the
/// caller attaches its message handler to the client first, and may send what it still owes (acknowledgements)
/// in <c>beforeDisconnect</c>.
/// </summary>
public static class MqttSubscriber
{
    public static async Task RunAsync(IMqttClient client, MqttConnection connection, string role, TimeSpan sessionExpiry, IReadOnlyList<string> topics,
        Action<bool> setConnected, TimeProvider time, MonitorMetrics metrics, ILogger logger, CancellationToken stoppingToken, Func<Task>? beforeDisconnect = null,
        Func<Task>? afterSubscribeFault = null)
    {
        var broker = connection.Describe();
        var guard = new TakeoverGuard(role, connection.ClientId(role), connection.Options, time, metrics, logger);
        using var lost = new SemaphoreSlim(0);
        int up = 0; // 1 from the report of a connection until its loss; the handler runs on MQTTnet's thread
        var pause = TimeSpan.Zero;
        client.DisconnectedAsync += e =>
        {
            if (Interlocked.Exchange(ref up, 0) == 1)
            {
                Log.MqttDisconnected(logger, role, broker, e.Reason.ToString());
                pause = guard.Disconnected(e);
            }
            setConnected(false);
            lost.Release();
            return Task.CompletedTask;
        };
        var reconnect = connection.Reconnect(reason => Log.MqttDisconnected(logger, role, broker, reason));
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                if (pause > TimeSpan.Zero) await Task.Delay(pause, time, stoppingToken).ConfigureAwait(false);
                await reconnect.ExecuteAsync(async token =>
                {
                    var result = await MqttConnection.ConnectAsync(client, connection.Builder(role)
                        .WithCleanStart(false)
                        .WithSessionExpiryInterval((uint)sessionExpiry.TotalSeconds), token).ConfigureAwait(false);
                    if (result.ResultCode != MqttClientConnectResultCode.Success)
                        throw new InvalidOperationException($"the broker refused the connection: {result.ResultCode}");
                    var subscribe = new MqttClientSubscribeOptionsBuilder();
                    foreach (var topic in topics) subscribe.WithTopicFilter(topic, MqttQualityOfServiceLevel.AtLeastOnce);
                    var granted = await client.SubscribeAsync(subscribe.Build(), token).ConfigureAwait(false);
                    // MQTT 5 refuses a filter in the SUBACK, not with an error (an ACL, no shared subscriptions):
                    // unchecked, the source would report itself connected and ready while nothing arrives.
                    var refused = granted.Items.Where(i => (int)i.ResultCode >= 0x80).Select(i => $"'{i.TopicFilter.Topic}' ({i.ResultCode})").ToList();
                    if (refused.Count > 0)
                    {
                        await client.DisconnectAsync(cancellationToken: token).ConfigureAwait(false);
                        throw new InvalidOperationException($"the broker refused the subscription to {string.Join(", ", refused)}");
                    }
                }, stoppingToken).ConfigureAwait(false);
                if (afterSubscribeFault is not null) await afterSubscribeFault().ConfigureAwait(false);
                // Losses of the failed attempts before this one; a loss of this connection that came before here
                // is drained with them, so the connection itself is asked whether it is still there.
                while (lost.CurrentCount > 0) await lost.WaitAsync(stoppingToken).ConfigureAwait(false);
                if (!client.IsConnected) continue;
                Volatile.Write(ref up, 1);
                guard.Connected();
                setConnected(true);
                Log.MqttConnected(logger, role, broker);
                await lost.WaitAsync(stoppingToken).ConfigureAwait(false);
                // A loss between the check and the report above left up = 1 and the status connected: undone here.
                Volatile.Write(ref up, 0);
                setConnected(false);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        finally
        {
            if (beforeDisconnect is not null) await beforeDisconnect().ConfigureAwait(false);
            setConnected(false);
            if (client.IsConnected)
            {
                try { await client.DisconnectAsync(new MqttClientDisconnectOptionsBuilder().Build(), CancellationToken.None).ConfigureAwait(false); }
                catch (Exception e) when (e is MQTTnet.Exceptions.MqttCommunicationException or OperationCanceledException) { }
            }
        }
    }
}
