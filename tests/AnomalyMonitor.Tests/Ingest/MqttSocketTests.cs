using AnomalyMonitor.Mqtt;
using MQTTnet;

namespace AnomalyMonitor.Tests.Ingest;

/// <summary>
/// The service's MQTT connections ask for socket buffers far above a loopback segment (64 KiB). MQTTnet's own
/// 8 KiB made a 16 KiB receive buffer, and a queued backlog drained at 28–64 messages a second (issue 11).
/// </summary>
public class MqttSocketTests
{
    [Theory]
    [InlineData("ingest")]
    [InlineData("alerts")]
    public void Connections_ask_for_socket_buffers_well_over_a_loopback_segment(string role)
    {
        var connection = new MqttConnection(new MqttOptions { Broker = "127.0.0.1:1883" }, "t");
        var options = MqttConnection.Build(connection.Builder(role));
        var tcp = Assert.IsType<MqttClientTcpOptions>(options.ChannelOptions);
        Assert.Equal(MqttConnection.SocketBufferBytes, tcp.BufferSize);
        Assert.True(tcp.BufferSize >= 16 * 65_536, $"{tcp.BufferSize} bytes");
        Assert.Equal($"anomaly-monitor-t-{role}", options.ClientId);
    }
}
