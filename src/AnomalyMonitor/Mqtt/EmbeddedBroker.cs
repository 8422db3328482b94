using System.Net;
using AnomalyMonitor.Hosting;
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

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var o = options.Value;
        if (!string.IsNullOrWhiteSpace(o.Broker)) return;
        var serverOptions = new MqttServerOptionsBuilder()
            .WithDefaultEndpoint()
            .WithDefaultEndpointBoundIPAddress(IPAddress.Parse(o.Embedded.Address))
            .WithDefaultEndpointPort(o.Embedded.Port)
            .WithPersistentSessions()
            .Build();
        _server = new MqttServerFactory().CreateMqttServer(serverOptions);
        // mosquitto_pub/mosquitto_sub send an empty client id and let the broker assign one, as MQTT allows.
        _server.ValidatingConnectionAsync += e =>
        {
            if (string.IsNullOrEmpty(e.ClientId)) e.AssignedClientIdentifier = "auto-" + Guid.NewGuid().ToString("N")[..12];
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
