using AnomalyMonitor.Core.Thresholds;
using AnomalyMonitor.Ingest;
using AnomalyMonitor.Pipeline;
using AnomalyMonitor.Samples;
using AnomalyMonitor.State;
using AnomalyMonitor.Telemetry;
using AnomalyMonitor.Tests.Support;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace AnomalyMonitor.Tests.Pipeline;

/// <summary>At thousands of items a second the store keeps an even sample, at most NormalStore:MaxPerSecond, after a burst of NormalStore:BurstSeconds.</summary>
public sealed class NormalStoreRateTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData(null, 10)] // the default: one second's worth
    [InlineData(10.0, 100)]
    public async Task Accepted_normals_are_stored_at_most_at_the_set_rate(double? burstSeconds, int burst)
    {
        var time = new FakeTimeProvider();
        var metrics = new MonitorMetrics();
        var o = new NormalStoreOptions { Path = "normals.db", Capacity = 100_000, MaxPerSecond = 10 };
        if (burstSeconds is { } b) o.BurstSeconds = b;
        var options = Options.Create(o);
        using var store = new NormalSampleStore(options, new PathResolver(_dir.Path), metrics);
        var durable = new DurableWrite(new StorageHealth(metrics, Microsoft.Extensions.Logging.Abstractions.NullLogger<StorageHealth>.Instance), Options.Create(new PipelineOptions()), time);
        using var outbox = new AnomalyMonitor.Alerts.AlertOutbox(Options.Create(new AnomalyMonitor.State.ServiceOptions { StateDirectory = "state" }), new PathResolver(_dir.Path), metrics);
        var sink = new NormalStoreSink(store, outbox, durable, options, Options.Create(new AnomalyMonitor.Fleet.FleetOptions()), time);
        using var pool = new BatchPool(1, 300);
        var source = new RecordingSource();

        async Task WriteAsync(int accepted)
        {
            var batch = await pool.RentAsync(TestModel.Shape, CancellationToken.None);
            for (int i = 0; i < accepted; i++) batch.Commit(new ImageRef(source.Item($"n{i}"), $"n{i}", "t", null));
            var verdicts = Enumerable.Repeat(new Verdict(new Judgement(false, 0.01, 0.1, 0, 0.01, 0.01), Accepted: true, FromWindow: true), accepted).ToArray();
            await sink.WriteAsync(new JudgedBatch(batch, batch.Images[..accepted], verdicts, 1, "log", time.GetUtcNow()), CancellationToken.None);
            pool.Return(batch);
        }

        await WriteAsync(300);
        Assert.Equal(burst, store.Count); // the burst
        await WriteAsync(300);
        Assert.Equal(burst, store.Count);
        time.Advance(TimeSpan.FromSeconds(2));
        await WriteAsync(300);
        Assert.Equal(burst + Math.Min(burst, 20), store.Count); // two seconds at 10/s refill, up to the burst
    }
}
