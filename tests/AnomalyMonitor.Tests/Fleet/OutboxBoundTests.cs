using AnomalyMonitor.Alerts;
using AnomalyMonitor.State;
using AnomalyMonitor.Telemetry;
using AnomalyMonitor.Tests.Support;
using Microsoft.Extensions.Options;

namespace AnomalyMonitor.Tests.Fleet;

/// <summary>While the broker is away, a scorer's sample batches are bounded in the outbox; nothing else is ever dropped.</summary>
public sealed class OutboxBoundTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Past_the_limit_the_oldest_sample_batches_go_and_alerts_and_labels_stay()
    {
        var metrics = new MonitorMetrics();
        using var outbox = new AlertOutbox(Options.Create(new ServiceOptions { StateDirectory = "state" }), Options.Create(new AlertsOptions { OutboxMaxSamples = 3 }),
            new PathResolver(_dir.Path), metrics);
        outbox.AddRange([new OutboxEntry("alerts", [0], "anomaly")]);
        for (byte i = 1; i <= 6; i++)
        {
            outbox.AddRange([new OutboxEntry("samples", [i], AlertOutbox.SamplesKind)]);
            if (i == 2) outbox.AddRange([new OutboxEntry("samples", [200], "label")]);
        }

        var pending = outbox.Peek(100);
        Assert.Equal([0, 200, 4, 5, 6], pending.Select(m => (int)m.Payload[0]));
        Assert.Equal(5, outbox.Count);
        Assert.Equal(5, metrics.OutboxSize.Value);
        Assert.Equal(3, metrics.OutboxDropped.WithLabels("samples").Value);

        // Sent and acknowledged afterwards (a dropped one among them, already gone): the count stays true.
        outbox.RemoveRange([.. pending.Select(m => m.Seq)]);
        Assert.Equal(0, outbox.Count);
    }
}
