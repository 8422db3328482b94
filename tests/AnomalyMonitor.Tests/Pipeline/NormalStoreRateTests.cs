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

    /// <summary>The sink over a real store, and a writer of batches of accepted normals.</summary>
    private sealed class Rig : IDisposable
    {
        public readonly FakeTimeProvider Time = new();
        public readonly NormalSampleStore Store;
        private readonly AnomalyMonitor.Alerts.AlertOutbox _outbox;
        private readonly NormalStoreSink _sink;
        private readonly BatchPool _pool = new(1, 300);
        private readonly RecordingSource _source = new();

        public Rig(string dir, NormalStoreOptions o)
        {
            var metrics = new MonitorMetrics();
            var options = Options.Create(o);
            Store = new NormalSampleStore(options, new PathResolver(dir), metrics);
            var durable = new DurableWrite(new StorageHealth(metrics, Microsoft.Extensions.Logging.Abstractions.NullLogger<StorageHealth>.Instance), Options.Create(new PipelineOptions()), Time);
            _outbox = new AnomalyMonitor.Alerts.AlertOutbox(Options.Create(new AnomalyMonitor.State.ServiceOptions { StateDirectory = "state" }), Options.Create(new AnomalyMonitor.Alerts.AlertsOptions()), new PathResolver(dir), metrics);
            _sink = new NormalStoreSink(Store, _outbox, durable, options, Options.Create(new AnomalyMonitor.Fleet.FleetOptions()), Time);
        }

        public async Task WriteAsync(int accepted)
        {
            var batch = await _pool.RentAsync(TestModel.Shape, CancellationToken.None);
            for (int i = 0; i < accepted; i++) batch.Commit(new ImageRef(_source.Item($"n{i}"), $"n{i}", "t", null));
            var verdicts = Enumerable.Repeat(new Verdict(new Judgement(false, 0.01, 0.1, 0, 0.01, 0.01), Accepted: true, FromWindow: true), accepted).ToArray();
            await _sink.WriteAsync(new JudgedBatch(batch, batch.Images[..accepted], verdicts, 1, "log", Time.GetUtcNow()), CancellationToken.None);
            _pool.Return(batch);
        }

        public void Dispose()
        {
            _pool.Dispose();
            _outbox.Dispose();
            Store.Dispose();
        }
    }

    [Theory]
    [InlineData(null, 10)] // the default: one second's worth
    [InlineData(10.0, 100)]
    public async Task Accepted_normals_are_stored_at_most_at_the_set_rate(double? burstSeconds, int burst)
    {
        var o = new NormalStoreOptions { Path = "normals.db", Capacity = 100_000, MaxPerSecond = 10 };
        if (burstSeconds is { } b) o.BurstSeconds = b;
        using var rig = new Rig(_dir.Path, o);
        var (time, store, WriteAsync) = (rig.Time, rig.Store, (Func<int, Task>)rig.WriteAsync);

        await WriteAsync(300);
        Assert.Equal(burst, store.Count); // the burst
        await WriteAsync(300);
        Assert.Equal(burst, store.Count);
        time.Advance(TimeSpan.FromSeconds(2));
        await WriteAsync(300);
        Assert.Equal(burst + Math.Min(burst, 20), store.Count); // two seconds at 10/s refill, up to the burst
    }

    /// <summary>
    /// A flood whose batches each earn about one token: the samples go to disk a batch's worth at a time (16 at
    /// most), not one transaction per batch for one sample, and the rate over the flood is unchanged.
    /// </summary>
    [Theory]
    [InlineData(24, 16)] // a batch's accepted normals beyond 16 wait for the next chunk
    [InlineData(4, 4)]   // small batches: stored whole, every fourth batch
    public async Task Under_a_flood_samples_are_stored_a_chunk_at_a_time_at_the_same_rate(int perBatch, int chunk)
    {
        using var rig = new Rig(_dir.Path, new NormalStoreOptions { Path = "normals.db", Capacity = 100_000, MaxPerSecond = 1000, BurstSeconds = 0.1 });
        await rig.WriteAsync(300); // spends the burst of 100
        Assert.Equal(100, rig.Store.Count);
        var steps = new List<long>();
        for (int i = 0; i < 400; i++)
        {
            rig.Time.Advance(TimeSpan.FromMilliseconds(1)); // one token a batch
            long before = rig.Store.Count;
            await rig.WriteAsync(perBatch);
            if (rig.Store.Count != before) steps.Add(rig.Store.Count - before);
        }
        Assert.All(steps, step => Assert.Equal(chunk, step));
        Assert.InRange(rig.Store.Count - 100, 400 - chunk, 400); // 400 ms at 1,000 a second, less what waits for its chunk
    }
}
