using System.Net;
using System.Text.Json;
using AnomalyMonitor.State;
using AnomalyMonitor.Tests.Support;

namespace AnomalyMonitor.Tests.Service;

/// <summary>
/// A full disk under the state (outbox, sample store, judge window) and the evidence: the service says so
/// (/readyz 503, a metric, a retained "degraded" status), holds its items without acknowledging them, and
/// once space is freed judges and records every one of them, with no restart in between.
/// </summary>
public sealed class StorageFaultTests : IAsyncLifetime
{
    private const string Alerts = "anomaly-monitor/alerts";
    private const string Status = "anomaly-monitor/status";
    private readonly TempDir _dir = new();
    private Mosquitto _broker = null!;
    private string _volume = "";
    private bool _mounted;

    public async Task InitializeAsync()
    {
        _broker = await Mosquitto.StartAsync();
        TestModel.CopyTo(Path.Combine(_dir.Path, "models"));
        // A small filesystem of its own, to fill for real; without the right to mount one (not root), an injected fault stands in.
        _volume = _dir.File("volume");
        Directory.CreateDirectory(_volume);
        var (code, _) = await Tool.RunAsync("mount", $"-t tmpfs -o size=2m tmpfs {_volume}");
        _mounted = code == 0;
    }

    public async Task DisposeAsync()
    {
        if (_mounted) await Tool.RunAsync("umount", $"-l {_volume}");
        await _broker.DisposeAsync();
        _dir.Dispose();
    }

    private string Inbox => Path.Combine(_dir.Path, "inbox");

    /// <summary>Fills the volume to the last byte; returns the filler, whose deletion frees it.</summary>
    private string Fill()
    {
        var filler = Path.Combine(_volume, "filler");
        using var stream = new FileStream(filler, FileMode.Create, FileAccess.Write, FileShare.None, 1, FileOptions.None);
        var block = new byte[64 * 1024];
        try
        {
            while (true) stream.Write(block);
        }
        catch (IOException)
        {
        }
        try
        {
            while (true) stream.Write(block, 0, 1);
        }
        catch (IOException)
        {
        }
        return filler;
    }

    [Fact]
    public async Task A_full_disk_degrades_loudly_holds_every_item_and_recovers_by_itself()
    {
        var settings = new Dictionary<string, string?>
        {
            ["Mqtt:Broker"] = _broker.Address,
            ["Mqtt:ClientId"] = "svc-disk-full",
            ["Service:StateDirectory"] = Path.Combine(_volume, "state"),
            ["NormalStore:Path"] = Path.Combine(_volume, "state", "normals.db"),
            ["Evidence:Path"] = Path.Combine(_volume, "evidence"),
            ["Pipeline:RetryDelay"] = "00:00:00.100",
            ["Pipeline:RetryMaxDelay"] = "00:00:00.500",
        };
        await using var subscriber = await MqttTestClient.ConnectAsync(_broker.Port, "sub-disk-full", subscribe: [Alerts, Status]);
        await using var service = await TestService.StartAsync(_dir.Path, settings);
        var durable = service.App.Services.GetRequiredServiceOf<DurableWrite>();
        await Wait.UntilAsync(() => service.Holder.IsJudging && service.App.Services.GetRequiredServiceOf<AnomalyMonitor.Alerts.AlertPublisher>().Connected, "judging and connected");
        using var http = service.Http("");

        string? filler = null;
        var full = new IOException("No space left on device (injected)");
        if (_mounted) filler = Fill();
        else durable.Fault = store => store is "outbox" or "normal_store" ? full : null;

        for (int i = 0; i < 40; i++) File.WriteAllBytes(Path.Combine(Inbox, $"n{i:D2}.png"), TestModel.NormalPng(i));
        for (int i = 0; i < 10; i++) File.WriteAllBytes(Path.Combine(Inbox, $"a{i:D2}.png"), TestModel.AnomalyPng(i));

        // Loud: readiness, the metric and the retained status all say which store cannot write.
        string body = "";
        await Wait.UntilAsync(() =>
        {
            using var ready = http.GetAsync("/readyz").GetAwaiter().GetResult();
            body = ready.Content.ReadAsStringAsync().GetAwaiter().GetResult();
            return ready.StatusCode == HttpStatusCode.ServiceUnavailable && body.Contains("\"degraded\":true", StringComparison.Ordinal)
                && (body.Contains("\"outbox\"", StringComparison.Ordinal) || body.Contains("\"normal_store\"", StringComparison.Ordinal));
        }, "/readyz to answer 503 degraded, naming a store on an item's path");
        // Whichever the first batch needed first (its alerts, or its samples), that store's writes wait.
        var store = body.Contains("\"outbox\"", StringComparison.Ordinal) ? "outbox" : "normal_store";
        // Readiness reads the problem, which is noted a moment before the gauge is set.
        await Wait.UntilAsync(() => service.Metrics.StorageDegraded.WithLabels(store).Value == 1, $"storage_degraded{{store={store}}} 1");
        await Wait.UntilAsync(() => subscriber.Alerts(Status).Any(s => s.GetProperty("state").GetString() == "degraded"), "a retained degraded status");
        var degraded = subscriber.Alerts(Status).Last(s => s.GetProperty("state").GetString() == "degraded");
        Assert.True(degraded.GetProperty("problems").EnumerateObject().Any(), degraded.ToString());
        // Held, not acknowledged: nothing moved to processed/ while its record could not be written.
        Assert.Empty(Directory.GetFiles(Path.Combine(Inbox, "processed"), "*", SearchOption.AllDirectories));
        Assert.Equal(0, service.Pipeline.Judged);

        if (filler is not null) File.Delete(filler);
        else durable.Fault = null;

        await Wait.UntilAsync(() => Directory.GetFiles(Path.Combine(Inbox, "processed", "normal")).Length == 40
            && Directory.GetFiles(Path.Combine(Inbox, "processed", "anomaly")).Length == 10 && service.Pipeline.Judged >= 50, "all 50 files judged and moved");
        Assert.Empty(Directory.GetFileSystemEntries(Path.Combine(Inbox, "processing")));
        Assert.Equal(50, service.Pipeline.Judged);
        Assert.Equal(40, service.Store.Count);
        Assert.Equal(40, service.Store.Snapshot(TestModel.Shape, DateTimeOffset.MaxValue).Images.Count); // the rows, not just the counter
        await Wait.UntilAsync(() => Enumerable.Range(0, 10).All(i => subscriber.Alerts(Alerts).Any(a => a.GetProperty("id").GetString() == $"a{i:D2}.png")), "an alert for every anomaly");
        await Wait.UntilAsync(() => http.GetAsync("/readyz").GetAwaiter().GetResult().IsSuccessStatusCode, "/readyz 200 again");
        await Wait.UntilAsync(() => subscriber.Alerts(Status).Last().GetProperty("state").GetString() == "online", "the status back to online");
        await Wait.UntilAsync(() => service.Metrics.StorageDegraded.WithLabels(store).Value == 0, $"storage_degraded{{store={store}}} back to 0");
        Assert.True(service.Metrics.StorageErrors.WithLabels(store).Value >= 1);
    }

    /// <summary>A record folder that cannot be made (a file stands where today's folder goes): the alert goes out without evidence.</summary>
    [Fact]
    public async Task Evidence_that_cannot_be_written_holds_neither_the_verdict_nor_its_alert()
    {
        var evidence = Path.Combine(_dir.Path, "evidence");
        Directory.CreateDirectory(evidence);
        var today = TimeProvider.System.GetUtcNow();
        foreach (var day in new[] { today, today.AddDays(1) })
            File.WriteAllText(Path.Combine(evidence, day.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture)), "in the way");
        await using var subscriber = await MqttTestClient.ConnectAsync(_broker.Port, "sub-no-evidence", subscribe: [Alerts]);
        await using var service = await TestService.StartAsync(_dir.Path, new Dictionary<string, string?>
        {
            ["Mqtt:Broker"] = _broker.Address,
            ["Fleet:Instance"] = "no-evidence",
        });
        await Wait.UntilAsync(() => service.App.Services.GetRequiredServiceOf<AnomalyMonitor.Alerts.AlertPublisher>().Connected, "alerts connected");
        File.WriteAllBytes(Path.Combine(Inbox, "odd.png"), TestModel.AnomalyPng(0));
        await Wait.UntilAsync(() => subscriber.Alerts(Alerts).Any(a => a.GetProperty("id").GetString() == "odd.png"), "the alert");
        // The alert can leave the outbox before the file is settled: the move is the last step.
        await Wait.UntilAsync(() => File.Exists(Path.Combine(Inbox, "processed", "anomaly", "odd.png")), "odd.png moved to processed/anomaly");
        var alert = subscriber.Alerts(Alerts).Single(a => a.GetProperty("id").GetString() == "odd.png");
        Assert.False(alert.TryGetProperty("evidence", out _), "no evidence paths for evidence that was not written");
        Assert.Equal(1, service.Metrics.StorageErrors.WithLabels("evidence").Value);
        Assert.False(service.App.Services.GetRequiredServiceOf<StorageHealth>().Degraded, "evidence never degrades readiness");
    }
}
