using System.Net;
using AnomalyMonitor.Telemetry;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using MQTTnet.Server;

namespace AnomalyMonitor.Mqtt;

/// <summary>
/// With no Mqtt:Broker configured, the service hosts its own broker (MQTTnet.Server) on loopback, so
/// mosquitto_pub/mosquitto_sub work out of the box. Sessions live in memory: they survive a client's
/// reconnect, not a restart of the service. Use an external broker where that matters.
/// </summary>
public sealed class EmbeddedBroker(IOptions<MqttOptions> options, ILogger<EmbeddedBroker> logger) : IHostedService, IDisposable
{
    private MqttServer? _server;

    /// <summary>Test hook: sees each subscription first, so that a test can refuse one as an ACL would (Mosquitto grants every SUBACK and filters later).</summary>
    internal Action<InterceptingSubscriptionEventArgs>? InterceptSubscription { get; set; }

    /// <summary>Test hook: sees each publish first, so that a test can refuse one in its PUBACK as an ACL would.</summary>
    internal Action<InterceptingPublishEventArgs>? InterceptPublish { get; set; }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var o = options.Value;
        if (!string.IsNullOrWhiteSpace(o.Broker)) return;
        var address = IPAddress.Parse(o.Embedded.Address);
        bool v6 = address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6;
        // MQTTnet opens an IPv6 listener on every address unless told otherwise: a broker without logins must
        // listen on the one address configured, of one family.
        var serverOptions = new MqttServerOptionsBuilder()
            .WithDefaultEndpoint()
            .WithDefaultEndpointBoundIPAddress(v6 ? IPAddress.None : address)
            .WithDefaultEndpointBoundIPV6Address(v6 ? address : IPAddress.None)
            .WithDefaultEndpointPort(o.Embedded.Port)
            .WithPersistentSessions()
            // MQTTnet's default (1,000, dropping the oldest, QoS 1 included) loses alerts to a subscriber that falls behind.
            .WithMaxPendingMessagesPerClient(o.Embedded.MaxPendingMessages)
            .Build();
        // mosquitto_pub/mosquitto_sub send an empty client id and let the broker assign one, as MQTT allows:
        // the adapter does it for MQTT 3.1.1 (their default), AssignedClientIdentifier for MQTT 5.
        _server = new MqttServerFactory().CreateMqttServer(serverOptions, [new ClientIdAssigningAdapter(new MQTTnet.Server.Internal.Adapter.MqttTcpServerAdapter())]);
        _server.ValidatingConnectionAsync += e =>
        {
            if (string.IsNullOrEmpty(e.ClientId)) e.AssignedClientIdentifier = ClientIdAssigningAdapter.NewId();
            return Task.CompletedTask;
        };
        _server.InterceptingSubscriptionAsync += e =>
        {
            InterceptSubscription?.Invoke(e);
            return Task.CompletedTask;
        };
        _server.InterceptingPublishAsync += e =>
        {
            InterceptPublish?.Invoke(e);
            return Task.CompletedTask;
        };
        await _server.StartAsync().ConfigureAwait(false);
        Log.BrokerStarted(logger, o.Embedded.Address, o.Embedded.Port);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_server is not null) await _server.StopAsync().ConfigureAwait(false);
    }

    public void Dispose() => _server?.Dispose();
}
