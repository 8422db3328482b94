using AnomalyMonitor.Alerts;
using AnomalyMonitor.Core.Imaging;
using AnomalyMonitor.Core.Runtime;
using AnomalyMonitor.Evidence;
using AnomalyMonitor.State;
using AnomalyMonitor.Telemetry;
using AnomalyMonitor.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace AnomalyMonitor.Tests.Evidence;

/// <summary>
/// The evidence store stays inside its bounds on its writer's thread: one old record out for each new one
/// once full, records past their age on the housekeeping request, and the writer at its own nice value.
/// </summary>
public sealed class EvidenceStoreTests : IDisposable
{
    private static readonly ImageShape Shape = new(1, 8, 8);
    private readonly TempDir _dir = new();
    private readonly MonitorMetrics _metrics = new();

    public void Dispose() => _dir.Dispose();

    private EvidenceStore Store(int maxCount, TimeProvider time, int nice = 10) =>
        new(Options.Create(new EvidenceOptions { Path = "evidence", MaxCount = maxCount, WriterNice = nice }), new PathResolver(_dir.Path), time, _metrics, NullLogger<EvidenceStore>.Instance);

    private static string Add(EvidenceStore store, string id)
    {
        var reserved = store.Reserve(id);
        var pixels = Enumerable.Range(0, Shape.PixelCount).Select(i => i / (float)Shape.PixelCount).ToArray();
        var alert = new AnomalyAlert("anomaly", id, "test", DateTimeOffset.UnixEpoch, DateTimeOffset.UnixEpoch, 1, 0.1, 9, 0.05, 0.01, "error", 1, reserved.Paths, 0, null);
        Assert.True(store.Enqueue(reserved, Shape, pixels, pixels, pixels, alert));
        return Path.GetFileName(reserved.Directory);
    }

    private string[] OnDisk() => [.. Directory.EnumerateDirectories(Path.Combine(_dir.Path, "evidence")).SelectMany(Directory.EnumerateDirectories).Select(Path.GetFileName).Order(StringComparer.Ordinal)!];

    [Fact]
    public async Task A_full_store_deletes_its_oldest_record_for_each_new_one()
    {
        using var store = Store(maxCount: 5, TimeProvider.System);
        var keys = Enumerable.Range(0, 12).Select(i => Add(store, $"item-{i}")).ToList();
        await Wait.UntilAsync(() => store.Queued == 0, "the evidence written");

        Assert.Equal(keys.TakeLast(5).Order(StringComparer.Ordinal), OnDisk());
        Assert.Equal(keys.TakeLast(5).Reverse(), store.Latest(100).Select(r => r.Key));
        Assert.Null(store.ImagePath(keys[0], "original")); // no longer served
        Assert.Equal(5, _metrics.EvidenceItems.Value);
    }

    [Fact]
    public async Task Find_reads_only_the_records_named_for_the_item_and_returns_its_newest()
    {
        using var store = Store(maxCount: 100, TimeProvider.System);
        var longA = new string('a', 70) + "-1";
        var longB = new string('a', 70) + "-2"; // the same folder name once cut to 60 characters
        Add(store, "mqtt/cam-1");
        var first = Add(store, "x");
        Add(store, longA);
        Add(store, longB);
        var newest = Add(store, "x");
        await Wait.UntilAsync(() => store.Queued == 0, "the evidence written");

        Assert.Equal("mqtt/cam-1", store.Find("mqtt/cam-1")?.Alert.Id);
        Assert.Equal(newest, store.Find("x")?.Key);
        Assert.Equal(longA, store.Find(longA)?.Alert.Id);
        Assert.Equal(longB, store.Find(longB)?.Alert.Id);
        Assert.Null(store.Find("unknown"));
        // A record is looked for only under its own name: one that claims another id inside is not read for it.
        var record = Directory.GetFiles(Path.Combine(_dir.Path, "evidence"), "record.json", SearchOption.AllDirectories).Single(f => f.Contains(first, StringComparison.Ordinal));
        File.WriteAllText(record, File.ReadAllText(record).Replace("\"id\":\"x\"", "\"id\":\"y\"", StringComparison.Ordinal));
        Assert.Contains("\"id\":\"y\"", File.ReadAllText(record), StringComparison.Ordinal);
        Assert.Null(store.Find("y"));
    }

    [Fact]
    public async Task Records_past_their_age_and_their_empty_day_folder_go_on_the_housekeeping_request()
    {
        var time = new FakeTimeProvider(TimeProvider.System.GetUtcNow());
        using var store = Store(maxCount: 100, time);
        var day = Path.Combine(_dir.Path, "evidence", time.GetUtcNow().ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture));
        for (int i = 0; i < 3; i++) Add(store, $"old-{i}");
        await Wait.UntilAsync(() => store.Queued == 0, "the evidence written");
        store.RequestPrune(); // nothing is old yet
        time.Advance(TimeSpan.FromDays(29));
        store.RequestPrune();
        // The writer takes its queue in order: once a record sent after the requests is written, they were handled.
        Add(store, "after-the-requests");
        await Wait.UntilAsync(() => store.Queued == 0, "the prune requests handled");
        Assert.Equal(4, OnDisk().Length);

        time.Advance(TimeSpan.FromDays(2)); // past the 30-day default
        store.RequestPrune();
        await Wait.UntilAsync(() => !Directory.Exists(day), "the old day's folder pruned");
        Assert.Empty(OnDisk());
        Assert.Empty(store.Latest(10));
    }

    [Fact]
    public async Task A_record_that_fails_half_written_leaves_no_files_behind_and_the_next_is_written()
    {
        using var store = Store(maxCount: 100, TimeProvider.System);
        var reserved = store.Reserve("half");
        // A directory where record.json goes: the three images are written, then the record fails, as on a full disk.
        Directory.CreateDirectory(Path.Combine(reserved.Directory, "record.json"));
        var pixels = new float[Shape.PixelCount];
        var alert = new AnomalyAlert("anomaly", "half", "test", DateTimeOffset.UnixEpoch, DateTimeOffset.UnixEpoch, 1, 0.1, 9, 0.05, 0.01, "error", 1, reserved.Paths, 0, null);
        Assert.True(store.Enqueue(reserved, Shape, pixels, pixels, pixels, alert));
        var next = Add(store, "next");
        await Wait.UntilAsync(() => store.Queued == 0, "the evidence written");

        Assert.Equal(1, _metrics.StorageErrors.WithLabels("evidence").Value);
        Assert.False(Directory.Exists(reserved.Directory), "the half-written record removed");
        Assert.Equal([next], OnDisk());
        Assert.Equal([next], store.Latest(10).Select(r => r.Key));
    }

    [Fact]
    public async Task The_writer_runs_at_its_configured_nice_value()
    {
        using var store = Store(maxCount: 10, TimeProvider.System, nice: 7);
        await Wait.UntilAsync(() => store.WriterThreadId > 0, "the writer thread started");
        Assert.Equal(7, ThreadNice.Of(store.WriterThreadId));
        Assert.Equal("evidence", File.ReadAllText($"/proc/self/task/{store.WriterThreadId}/comm").Trim());
    }
}
