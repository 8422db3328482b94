using System.Net;
using System.Security.Cryptography.X509Certificates;
using MQTTnet.Adapter;
using MQTTnet.Diagnostics.Logger;
using MQTTnet.Formatter;
using MQTTnet.Packets;
using MQTTnet.Server;

namespace AnomalyMonitor.Mqtt;

/// <summary>
/// Gives MQTT 3.1.1 clients that connect with an empty client id and a clean session (mosquitto_sub and
/// mosquitto_pub by default) an id of the broker's choosing, as MQTT 3.1.1 allows [MQTT-3.1.3-6] and
/// Mosquitto does. MQTTnet's server rejects them ("identifier rejected"), and its AssignedClientIdentifier
/// applies to MQTT 5 only, so this wraps the stock TCP adapter and fills in the id of the first CONNECT
/// packet of each connection before the server reads it. An empty id without a clean session is left
/// empty, so the server still refuses it, as the specification requires [MQTT-3.1.3-8].
/// </summary>
internal sealed class ClientIdAssigningAdapter(IMqttServerAdapter inner) : IMqttServerAdapter
{
    public Func<IMqttChannelAdapter, Task>? ClientHandler { get; set; }

    public static string NewId() => "auto-" + Guid.NewGuid().ToString("N")[..12];

    public Task StartAsync(MqttServerOptions options, IMqttNetLogger logger)
    {
        inner.ClientHandler = channel => ClientHandler is { } handler ? handler(new Channel(channel)) : Task.CompletedTask;
        return inner.StartAsync(options, logger);
    }

    public Task StopAsync() => inner.StopAsync();

    public void Dispose() => inner.Dispose();

    private sealed class Channel(IMqttChannelAdapter inner) : IMqttChannelAdapter
    {
        private int _first = 1;

        public long BytesReceived => inner.BytesReceived;
        public long BytesSent => inner.BytesSent;
        public X509Certificate2 ClientCertificate => inner.ClientCertificate;
        public EndPoint RemoteEndPoint => inner.RemoteEndPoint;
        public EndPoint LocalEndPoint => inner.LocalEndPoint;
        public bool IsSecureConnection => inner.IsSecureConnection;
        public MqttPacketFormatterAdapter PacketFormatterAdapter => inner.PacketFormatterAdapter;

        public Task ConnectAsync(CancellationToken cancellationToken) => inner.ConnectAsync(cancellationToken);
        public Task DisconnectAsync(CancellationToken cancellationToken) => inner.DisconnectAsync(cancellationToken);
        public void ResetStatistics() => inner.ResetStatistics();
        public Task SendPacketAsync(MqttPacket packet, CancellationToken cancellationToken) => inner.SendPacketAsync(packet, cancellationToken);
        public void Dispose() => inner.Dispose();

        public async Task<MqttPacket> ReceivePacketAsync(CancellationToken cancellationToken)
        {
            var packet = await inner.ReceivePacketAsync(cancellationToken).ConfigureAwait(false);
            if (Interlocked.Exchange(ref _first, 0) == 1 && packet is MqttConnectPacket connect && string.IsNullOrEmpty(connect.ClientId)
                && connect.CleanSession && inner.PacketFormatterAdapter.ProtocolVersion != MqttProtocolVersion.V500)
                connect.ClientId = NewId();
            return packet;
        }
    }
}
