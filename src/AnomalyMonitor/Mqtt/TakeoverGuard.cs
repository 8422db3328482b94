using AnomalyMonitor.Telemetry;
using Microsoft.Extensions.Logging;
using MQTTnet;

namespace AnomalyMonitor.Mqtt;

/// <summary>
/// Notices when the broker keeps taking this connection's session away, which happens when another client
/// connects with the same client id (a second instance configured alike, or an old one still running):
/// a broker gives a session to one connection at a time, and two clients that reconnect at once hand it
/// back and forth, each getting one in-flight window per turn. The broker says so with reason
/// SessionTakenOver (MQTT 5), or older brokers just close the socket soon after the connect. Each such
/// loss is counted and doubles the wait before reconnecting (so the rival keeps the session and the
/// stream flows), and a second one in a row is logged as an error naming the client id.
/// </summary>
internal sealed class TakeoverGuard(string role, string clientId, MqttOptions options, TimeProvider time, MonitorMetrics metrics, ILogger logger)
{
    /// <summary>A session lost sooner than this after connecting counts as taken over.</summary>
    public static readonly TimeSpan ShortSession = TimeSpan.FromSeconds(5);

    private DateTimeOffset _connectedAt;
    private int _inRow;

    public int InRow => _inRow;

    public void Connected() => _connectedAt = time.GetUtcNow();

    /// <summary>How long to wait before reconnecting after this disconnect.</summary>
    public TimeSpan Disconnected(MqttClientDisconnectedEventArgs e)
    {
        bool takenOver = e.Reason == MqttClientDisconnectReason.SessionTakenOver
            || (e.ClientWasConnected && time.GetUtcNow() - _connectedAt < ShortSession);
        if (!takenOver)
        {
            _inRow = 0;
            return TimeSpan.Zero;
        }
        _inRow++;
        metrics.MqttSessionTakeovers.WithLabels(role).Inc();
        if (_inRow == 2) Log.MqttSessionTakenOver(logger, role, clientId, _inRow);
        var delay = TimeSpan.FromTicks(Math.Min(options.ReconnectMax.Ticks, options.ReconnectMin.Ticks * (1L << Math.Min(_inRow, 20))));
        return delay;
    }
}
