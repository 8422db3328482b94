using AnomalyMonitor.Core.Storage;
using AnomalyMonitor.Registry;
using AnomalyMonitor.Tests.Support;

namespace AnomalyMonitor.Tests.Fleet;

/// <summary>
/// One trainer and scorers on one real Mosquitto, each a full service on loopback: the trainer's model
/// reaches every scorer through the retained model topic (at start, on promotion, on rollback, and for a
/// scorer that starts later), a corrupt model message changes nothing, and accepted normals travel from a
/// scorer to the trainer's sample store. Versions are made by hand (a copy of v1 saved as v2), so nothing
/// here hinges on a retraining gate's verdict.
/// </summary>
public sealed class FleetTests : IAsyncLifetime
{
    private readonly TempDir _dir = new();
    private Mosquitto _broker = null!;

    public async Task InitializeAsync() => _broker = await Mosquitto.StartAsync();

    public async Task DisposeAsync()
    {
        await _broker.DisposeAsync();
        _dir.Dispose();
    }

    private Task<TestService> StartAsync(string instance, string role, string? topic = null, Dictionary<string, string?>? extra = null)
    {
        var root = Path.Combine(_dir.Path, instance);
        Directory.CreateDirectory(root);
        if (role == "trainer") TestModel.InstallAsV1(Path.Combine(root, "models"));
        var settings = new Dictionary<string, string?>
        {
            ["Mqtt:Broker"] = _broker.Address,
            ["Fleet:Instance"] = instance,
            ["Fleet:Role"] = role,
            ["Bootstrap:Shape"] = "16x16x1",
            ["Bootstrap:Samples"] = "1000",
            ["Ingest:Mqtt:Enabled"] = topic is null ? "false" : "true",
            ["Ingest:Mqtt:Topics:0"] = topic ?? "unused/#",
            ["Ingest:Folder:Enabled"] = "false",
        };
        foreach (var (k, v) in extra ?? []) settings[k] = v;
        return TestService.StartAsync(root, settings);
    }

    private static int Judging(TestService s) => s.Holder.IsJudging ? s.Holder.Version : 0;

    [Fact]
    public async Task Every_scorer_judges_with_the_trainers_model_through_promotion_rollback_and_a_corrupt_message()
    {
        await using var trainer = await StartAsync("trainer", "trainer");
        await using var a = await StartAsync("scorer-a", "scorer", "anomaly-monitor/images/a/#");
        await using var b = await StartAsync("scorer-b", "scorer");
        await Wait.UntilAsync(() => Judging(trainer) == 1, "the trainer judging with v1");
        await Wait.UntilAsync(() => Judging(a) == 1 && Judging(b) == 1, "both scorers judging with the trainer's v1");
        Assert.Equal("fleet:trainer", a.Registry.List().Single(v => v.Version == 1).Origin);
        Assert.Equal("local", trainer.Registry.List().Single(v => v.Version == 1).Origin);
        using (var http = a.Http(""))
        {
            var status = await System.Net.Http.Json.HttpClientJsonExtensions.GetFromJsonAsync<System.Text.Json.JsonElement>(http, "/api/status");
            Assert.Equal("scorer", status.GetProperty("role").GetString());
            Assert.Equal("scorer-a", status.GetProperty("instance").GetString());
            Assert.Equal("fleet:trainer", status.GetProperty("modelOrigin").GetString());
        }

        // A promotion on the trainer (as its retraining gate makes one) reaches both scorers.
        using (var v1 = trainer.Registry.Load(1, TorchSharp.torch.CPU))
            trainer.Registry.Save(2, v1.Module, v1.Manifest with { Version = 2, ParentVersion = 1, CreatedAt = TimeProvider.System.GetUtcNow() });
        trainer.App.Services.GetRequiredServiceOf<Promotion>().Promote(2);
        await Wait.UntilAsync(() => Judging(a) == 2 && Judging(b) == 2, "both scorers judging with v2", 5);

        // So does a rollback.
        trainer.App.Services.GetRequiredServiceOf<Promotion>().Rollback(1);
        await Wait.UntilAsync(() => Judging(a) == 1 && Judging(b) == 1, "both scorers rolled back to v1", 5);
        Assert.Equal(1, a.Registry.CurrentVersion());

        // Corrupt, truncated and wrong-shape messages (not retained, so the trainer's model stays on the topic) change nothing.
        await using (var vandal = await MqttTestClient.ConnectAsync(_broker.Port, "vandal"))
        {
            var good = System.Text.Encoding.UTF8.GetString(AnomalyMonitor.Fleet.ModelMessage.FromDirectory(trainer.Registry.PathOf(2), 2, "trainer", TimeProvider.System.GetUtcNow()));
            int cut = good.IndexOf("\"weights\":\"", StringComparison.Ordinal) + "\"weights\":\"".Length + 40; // 40 base64 characters: valid, and short
            await vandal.PublishAsync("anomaly-monitor/fleet/model", "{ not a model");
            await vandal.PublishAsync("anomaly-monitor/fleet/model", good[..cut] + "\"}");
            await vandal.PublishAsync("anomaly-monitor/fleet/model", good.Replace("\"height\":16", "\"height\":28", StringComparison.Ordinal));
        }
        foreach (var s in new[] { a, b })
            await Wait.UntilAsync(() => s.Metrics.FleetModelsRefused.GetAllLabelValues().Sum(l => s.Metrics.FleetModelsRefused.WithLabels(l).Value) == 3, "three refusals counted");
        foreach (var reason in new[] { "corrupt", "shape", "truncated" })
            Assert.True(a.Metrics.FleetModelsRefused.WithLabels(reason).Value == 1, $"{reason}: {a.App.Services.GetRequiredServiceOf<AnomalyMonitor.Fleet.FleetModelListener>().LastRefusal}");
        Assert.Equal(1, Judging(a));
        Assert.Equal(1, Judging(b));

        // A scorer that starts afterwards gets the current model from the retained message.
        await using var late = await StartAsync("scorer-late", "scorer");
        await Wait.UntilAsync(() => Judging(late) == 1, "the late scorer judging with v1");

        // A scorer refuses to retrain or roll back on its own.
        Assert.Equal("skipped", (await a.Retrainer.RunAsync(force: true, CancellationToken.None)).Result);
        Assert.Throws<ArgumentException>(() => a.App.Services.GetRequiredServiceOf<Promotion>().Rollback(2));
    }

    [Fact]
    public async Task A_scorers_accepted_normals_reach_the_trainers_store_with_their_provenance()
    {
        await using var trainer = await StartAsync("t2", "trainer");
        await using var scorer = await StartAsync("s2", "scorer", "anomaly-monitor/images/s2/#");
        await Wait.UntilAsync(() => Judging(scorer) == 1, "the scorer judging with the trainer's model");
        await Wait.UntilAsync(() => scorer.App.Services.GetRequiredServiceOf<AnomalyMonitor.Mqtt.MqttSource>().Connected, "the scorer subscribed");
        long before = trainer.Store.Count;
        await using (var camera = await MqttTestClient.ConnectAsync(_broker.Port, "camera-s2"))
            for (int i = 0; i < 10; i++) await camera.PublishAsync("anomaly-monitor/images/s2/cam", TestModel.NormalPng(i));
        await Wait.UntilAsync(() => scorer.Pipeline.Judged >= 10, "ten images judged by the scorer");
        await Wait.UntilAsync(() => trainer.Store.Count > before, "the scorer's normals stored by the trainer");
        Assert.Equal(0, scorer.Store.Count); // a scorer keeps no training samples of its own
        // Each keeps its own retained status: one service's will cannot say the whole fleet is offline.
        await using (var watcher = await MqttTestClient.ConnectAsync(_broker.Port, "status-watch-s2", subscribe: "anomaly-monitor/status/#"))
        {
            await Wait.UntilAsync(() => watcher.Received.Any(m => m.Topic == "anomaly-monitor/status/s2") && watcher.Received.Any(m => m.Topic == "anomaly-monitor/status/t2"), "both retained statuses");
            Assert.Contains("\"instance\":\"s2\"", watcher.Received.First(m => m.Topic == "anomaly-monitor/status/s2").Payload, StringComparison.Ordinal);
        }
        Assert.Contains(trainer.Store.CountBySource().Keys, s => s.StartsWith("s2/", StringComparison.Ordinal));

        // An operator's label given to the scorer reaches the trainer, which holds the item's sample.
        var stored = trainer.Store.ItemIds().First(id => id.StartsWith("s2:", StringComparison.Ordinal));
        using (var http = scorer.Http())
        {
            var reply = await http.PostAsync("/api/feedback", new StringContent(
                System.Text.Json.JsonSerializer.Serialize(new { id = stored["s2:".Length..], label = "anomaly" }), System.Text.Encoding.UTF8, "application/json"));
            Assert.Equal(System.Net.HttpStatusCode.OK, reply.StatusCode);
        }
        await Wait.UntilAsync(() => trainer.Store.LabelOf(stored) == "anomaly", "the label applied on the trainer");
    }

    [Fact]
    public async Task A_samples_message_over_the_size_limit_is_refused_unread_and_the_next_one_is_stored()
    {
        await using var trainer = await StartAsync("t3", "trainer", extra: new() { ["Fleet:MaxSampleMessageBytes"] = "4096" });
        await Wait.UntilAsync(() => trainer.App.Services.GetRequiredServiceOf<AnomalyMonitor.Fleet.FleetSampleListener>().Connected, "the trainer subscribed");
        var shape = TestModel.Shape;
        var sample = new AnomalyMonitor.Samples.NewSample("small", "cam", DateTimeOffset.UnixEpoch, 0.1, 1, new float[shape.PixelCount]);
        var small = AnomalyMonitor.Fleet.SampleMessage.Encode("s3", shape, [sample]);
        var large = AnomalyMonitor.Fleet.SampleMessage.Encode("s3", shape, [.. Enumerable.Range(0, 40).Select(i => sample with { ItemId = $"big-{i}" })]);
        Assert.True(small.Length < 4096 && large.Length > 4096, $"{small.Length} and {large.Length} bytes");

        await using (var scorer = await MqttTestClient.ConnectAsync(_broker.Port, "fake-scorer-s3"))
        {
            await scorer.PublishAsync("anomaly-monitor/fleet/samples", large);
            await scorer.PublishAsync("anomaly-monitor/fleet/samples", small);
        }
        await Wait.UntilAsync(() => trainer.Store.ItemIds().Contains("s3:small"), "the small message stored");
        Assert.Equal(1, trainer.Metrics.Rejected.WithLabels("fleet", "too_large").Value);
        Assert.DoesNotContain(trainer.Store.ItemIds(), id => id.StartsWith("s3:big-", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_scorer_waiting_for_its_first_model_keeps_what_it_cannot_hold_however_long_the_wait()
    {
        // Retries fast and few: a hand-back counted as a failed attempt would refuse the files within a second.
        await using var scorer = await StartAsync("s4", "scorer", extra: new()
        {
            ["Ingest:Folder:Enabled"] = "true",
            ["Bootstrap:Samples"] = "5",
            ["Pipeline:MaxAttempts"] = "2",
            ["Pipeline:RetryDelay"] = "00:00:00.05",
            ["Pipeline:RetryMaxDelay"] = "00:00:00.2",
        });
        Directory.CreateDirectory(scorer.Inbox);
        for (int i = 0; i < 5; i++) File.WriteAllBytes(Path.Combine(scorer.Inbox, $"held{i}.png"), TestModel.NormalPng(i));
        await Wait.UntilAsync(() => scorer.Store.HeldItems(TestModel.Shape).Count == 5, "one bootstrap's worth held");
        for (int i = 0; i < 7; i++) File.WriteAllBytes(Path.Combine(scorer.Inbox, $"wait{i}.png"), TestModel.NormalPng(i));

        // Each waiting file offered three times or more: past Pipeline:MaxAttempts, where a counted attempt would have refused it.
        var folder = scorer.App.Services.GetRequiredServiceOf<AnomalyMonitor.Ingest.FolderSource>();
        await Wait.UntilAsync(() => folder.Retried >= 7 * 3, "the waiting files offered again and again");
        Assert.False(scorer.Holder.IsJudging);
        Assert.Equal(0, scorer.Count("rejected"));
        var rejected = Path.Combine(scorer.Inbox, "rejected");
        Assert.True(!Directory.Exists(rejected) || Directory.GetFiles(rejected).Length == 0, "files were refused while the scorer waited");
        Assert.Equal(5, scorer.Store.HeldItems(TestModel.Shape).Count);
        Assert.Equal(12, Directory.GetFiles(Path.Combine(scorer.Inbox, "processing")).Length + Directory.GetFiles(scorer.Inbox).Length);
    }
}
