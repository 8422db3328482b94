using System.Collections.Concurrent;
using System.Text.Json;
using MQTTnet;
using MQTTnet.Protocol;

namespace AnomalyMonitor.Tests.Support;

/// <summary>A real MQTT 5 client for tests: publishes images, collects alerts.</summary>
public sealed class MqttTestClient : IAsyncDisposable
{
    private readonly IMqttClient _client = new MqttClientFactory().CreateMqttClient();

    public ConcurrentQueue<(string Topic, string Payload)> Received { get; } = new();

    public static async Task<MqttTestClient> ConnectAsync(int port, string clientId, bool persistent = false, params string[] subscribe)
    {
        var c = new MqttTestClient();
        c._client.ApplicationMessageReceivedAsync += e =>
        {
            c.Received.Enqueue((e.ApplicationMessage.Topic, e.ApplicationMessage.ConvertPayloadToString()));
            return Task.CompletedTask;
        };
        await c._client.ConnectAsync(new MqttClientOptionsBuilder().WithTcpServer("127.0.0.1", port).WithClientId(clientId)
            .WithProtocolVersion(MQTTnet.Formatter.MqttProtocolVersion.V500)
            .WithCleanStart(!persistent).WithSessionExpiryInterval(persistent ? 3600u : 0u).Build());
        foreach (var topic in subscribe)
            await c._client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter(topic, MqttQualityOfServiceLevel.AtLeastOnce).Build());
        return c;
    }

    public Task PublishAsync(string topic, byte[] payload) =>
        _client.PublishAsync(new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload(payload).WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());

    public Task PublishAsync(string topic, string payload) => PublishAsync(topic, System.Text.Encoding.UTF8.GetBytes(payload));

    /// <summary>Alert payloads received so far on a topic, parsed.</summary>
    public List<JsonElement> Alerts(string topic) =>
        Received.Where(r => r.Topic == topic).Select(r => JsonDocument.Parse(r.Payload).RootElement).ToList();

    public async Task DisconnectAsync()
    {
        if (_client.IsConnected) await _client.DisconnectAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await DisconnectAsync();
        _client.Dispose();
    }
}
