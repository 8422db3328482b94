using AnomalyMonitor.Mqtt;
using AnomalyMonitor.Telemetry;
using AnomalyMonitor.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;
using MQTTnet;

namespace AnomalyMonitor.Tests.Ingest;

/// <summary>The subscriber's loop against a real Mosquitto: a connection lost at any moment is noticed and made again.</summary>
public sealed class MqttSubscriberTests
{
    [Fact]
    public async Task A_connection_lost_right_after_its_subscribe_is_made_again_not_reported_as_connected()
    {
        await using var broker = await Mosquitto.StartAsync();
        using var client = new MqttClientFactory().CreateMqttClient();
        var connection = new MqttConnection(new MqttOptions { Broker = broker.Address }, "sub-" + Guid.NewGuid().ToString("N")[..8]);
        var states = new System.Collections.Concurrent.ConcurrentQueue<bool>();
        int subscribes = 0;
        using var stop = new CancellationTokenSource();
        // A loss in that instant cannot be produced on demand: the hook drops the first connection there, and
        // waits until the loop has heard of the loss, as a loss from the network would have been heard.
        async Task DropTheFirst()
        {
            if (Interlocked.Increment(ref subscribes) != 1) return;
            await client.DisconnectAsync(new MqttClientDisconnectOptionsBuilder().Build());
            await Wait.UntilAsync(() => states.TryPeek(out var s) && !s, "the loss heard");
            await Task.Delay(200); // the handler's remaining lines (its release) run in this instant too
        }
        var run = MqttSubscriber.RunAsync(client, connection, "ingest", TimeSpan.FromMinutes(1), ["t/#"], states.Enqueue, TimeProvider.System,
            new MonitorMetrics(), NullLogger.Instance, stop.Token, afterSubscribeFault: DropTheFirst);

        await Wait.UntilAsync(() => Volatile.Read(ref subscribes) >= 2 && client.IsConnected && states.LastOrDefault(), "subscribed again after the loss");
        Assert.DoesNotContain(true, states.Take(1));
        stop.Cancel();
        await run;
        Assert.False(states.Last());
    }

    [Fact]
    public async Task A_subscription_the_broker_refuses_is_retried_and_never_reported_as_connected()
    {
        int port = Ports.Free();
        var options = new MqttOptions { Broker = "" };
        options.Embedded.Port = port;
        using var broker = new EmbeddedBroker(Microsoft.Extensions.Options.Options.Create(options), NullLogger<EmbeddedBroker>.Instance);
        int refusals = 0;
        // As an ACL or a broker without shared subscriptions answers in MQTT 5: a SUBACK that refuses the filter.
        broker.InterceptSubscription = e =>
        {
            if (Interlocked.Increment(ref refusals) > 3) return;
            e.ProcessSubscription = false;
            e.Response.ReasonCode = MQTTnet.Protocol.MqttSubscribeReasonCode.NotAuthorized;
        };
        await broker.StartAsync(CancellationToken.None);
        using var client = new MqttClientFactory().CreateMqttClient();
        var connection = new MqttConnection(options, "refused");
        var states = new System.Collections.Concurrent.ConcurrentQueue<bool>();
        using var stop = new CancellationTokenSource();
        var run = MqttSubscriber.RunAsync(client, connection, "ingest", TimeSpan.FromMinutes(1), ["cameras/#"], states.Enqueue, TimeProvider.System,
            new MonitorMetrics(), NullLogger.Instance, stop.Token);

        await Wait.UntilAsync(() => states.LastOrDefault(), "connected once the broker grants the filter");
        Assert.Equal(4, Volatile.Read(ref refusals));
        Assert.Equal([true], states.Where(s => s));
        stop.Cancel();
        await run;
        await broker.StopAsync(CancellationToken.None);
    }
}
