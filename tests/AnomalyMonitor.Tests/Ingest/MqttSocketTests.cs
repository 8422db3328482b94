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

    /// <summary>
    /// A peer that takes the TCP connection and never answers (a hung broker whose kernel still accepts): the
    /// connect must end in a TimeoutException, which the reconnect loop retries, not wait as long as the peer is silent.
    /// </summary>
    [Fact]
    public async Task A_connect_to_a_silent_peer_gives_up_at_the_connect_timeout()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        int port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        var accepted = listener.AcceptSocketAsync();
        using var client = new MqttClientFactory().CreateMqttClient();
        // As the reconnect loops call it: with a token that can be cancelled (the host's), which MQTTnet's own timeout ignores.
        using var stopping = new CancellationTokenSource();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        await Assert.ThrowsAsync<TimeoutException>(() => MqttConnection.ConnectAsync(client,
            new MqttClientOptionsBuilder().WithTcpServer("127.0.0.1", port).WithTimeout(TimeSpan.FromHours(1)), stopping.Token));
        Assert.True(clock.Elapsed >= MqttConnection.ConnectTimeout - TimeSpan.FromSeconds(1), $"gave up after {clock.Elapsed}");
        (await accepted).Dispose();
    }
}
