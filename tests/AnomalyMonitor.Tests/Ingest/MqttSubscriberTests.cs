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
}
