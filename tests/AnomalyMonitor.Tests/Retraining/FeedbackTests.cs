using AnomalyMonitor.State;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using AnomalyMonitor.Samples;
using AnomalyMonitor.Telemetry;
using AnomalyMonitor.Tests.Support;
using Microsoft.Extensions.Options;

namespace AnomalyMonitor.Tests.Retraining;

/// <summary>Operator feedback over HTTP and MQTT, and what it does to the training data.</summary>
public sealed class FeedbackTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static async Task<(HttpStatusCode Status, JsonElement Body)> PostAsync(HttpClient http, string body)
    {
        using var content = new StringContent(body, Encoding.UTF8, "application/json");
        using var response = await http.PostAsync("/api/feedback", content);
        return (response.StatusCode, JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone());
    }

    private static async Task JudgeAsync(TestService service, string name, byte[] png)
    {
        long before = service.Pipeline.Judged;
        Directory.CreateDirectory(service.Inbox);
        File.WriteAllBytes(Path.Combine(service.Inbox, name), png);
        // The file moves only after its verdict is recorded everywhere (store included).
        await Wait.UntilAsync(() => service.Pipeline.Judged > before
            && (File.Exists(Path.Combine(service.Inbox, "processed", "normal", name)) || File.Exists(Path.Combine(service.Inbox, "processed", "anomaly", name))), $"{name} judged and recorded");
    }

    [Fact]
    public async Task The_feedback_API_labels_items_and_refuses_what_it_cannot_apply_without_changing_anything()
    {
        TestModel.InstallAsV1(Path.Combine(_dir.Path, "models"));
        await using var service = await TestService.StartAsync(_dir.Path, new Dictionary<string, string?> { ["Feedback:Topic"] = "" });
        await Wait.UntilAsync(() => service.Holder.IsJudging, "the model loaded");
        await JudgeAsync(service, "alarm.png", TestModel.AnomalyPng(0));
        await JudgeAsync(service, "fine.png", TestModel.NormalPng(0));
        Assert.Equal(1, service.Count("anomaly"));
        Assert.NotNull(service.Store.Find("fine.png", TestModel.Shape));
        long stored = service.Store.Count;

        // Refused, and nothing changes.
        using var anonymous = service.Http("");
        using var wrong = service.Http("not-the-token-but-long-enough");
        using var http = service.Http();
        var good = """{"id":"alarm.png","label":"normal"}""";
        Assert.Equal(HttpStatusCode.Unauthorized, (await PostAsync(anonymous, good)).Status);
        Assert.Equal(HttpStatusCode.Unauthorized, (await PostAsync(wrong, good)).Status);
        var malformed = await PostAsync(http, "{not json");
        Assert.Equal(HttpStatusCode.BadRequest, malformed.Status);
        Assert.Contains("must be JSON", malformed.Body.GetProperty("message").GetString());
        var badLabel = await PostAsync(http, """{"id":"alarm.png","label":"maybe"}""");
        Assert.Equal(HttpStatusCode.BadRequest, badLabel.Status);
        Assert.Contains("\"maybe\"", badLabel.Body.GetProperty("message").GetString());
        Assert.Equal(HttpStatusCode.BadRequest, (await PostAsync(http, """{"label":"normal"}""")).Status);
        var unknown = await PostAsync(http, """{"id":"never-seen.png","label":"anomaly"}""");
        Assert.Equal(HttpStatusCode.NotFound, unknown.Status);
        Assert.Equal("unknown_id", unknown.Body.GetProperty("result").GetString());
        Assert.Equal(stored, service.Store.Count);
        Assert.Null(service.Store.LabelOf("alarm.png"));
        Assert.Null(service.Store.Find("alarm.png", TestModel.Shape));

        // A false alarm becomes a training sample, from its evidence image.
        await service.EvidenceWrittenAsync();
        var applied = await PostAsync(http, good);
        Assert.Equal(HttpStatusCode.OK, applied.Status);
        Assert.Equal("normal", service.Store.LabelOf("alarm.png"));
        Assert.NotNull(service.Store.Find("alarm.png", TestModel.Shape));
        Assert.Equal(stored + 1, service.Store.Count);

        // A confirmed anomaly leaves the store and is kept for the gate.
        Assert.Equal(HttpStatusCode.OK, (await PostAsync(http, """{"id":"fine.png","label":"anomaly"}""")).Status);
        Assert.Null(service.Store.Find("fine.png", TestModel.Shape));
        Assert.Single(service.Store.ConfirmedAnomalies(TestModel.Shape));
        Assert.Equal(1, service.Metrics.ConfirmedAnomalies.Value);
        Assert.Equal(1, service.Metrics.Feedback.WithLabels("http", "normal", "applied").Value);
        Assert.Equal(1, service.Metrics.Feedback.WithLabels("http", "anomaly", "unknown_id").Value);
        Assert.Equal(2, service.Metrics.Feedback.WithLabels("http", "invalid", "invalid").Value);
        Assert.Equal(1, service.Metrics.Feedback.WithLabels("http", "normal", "invalid").Value); // the one without an id
    }

    [Fact]
    public async Task Feedback_on_the_MQTT_topic_is_applied_and_garbage_there_is_counted_and_ignored()
    {
        await using var broker = await Mosquitto.StartAsync();
        TestModel.InstallAsV1(Path.Combine(_dir.Path, "models"));
        await using var service = await TestService.StartAsync(_dir.Path, new Dictionary<string, string?>
        {
            ["Mqtt:Broker"] = broker.Address,
            ["Mqtt:ClientId"] = "svc-feedback",
        });
        await Wait.UntilAsync(() => service.Holder.IsJudging && service.Metrics.MqttConnected.WithLabels("feedback").Value == 1, "model loaded and feedback subscribed");
        await JudgeAsync(service, "fine.png", TestModel.NormalPng(0));
        Assert.NotNull(service.Store.Find("fine.png", TestModel.Shape));

        await using var operatorClient = await MqttTestClient.ConnectAsync(broker.Port, "operator");
        await operatorClient.PublishAsync("anomaly-monitor/feedback", "this is not json");
        await operatorClient.PublishAsync("anomaly-monitor/feedback", """{"id":"nobody.png","label":"anomaly"}""");
        await operatorClient.PublishAsync("anomaly-monitor/feedback", """{"id":"fine.png","label":"anomaly"}""");
        // The label is stored before the reply is counted: wait for the count, the last thing the handler does.
        await Wait.UntilAsync(() => service.Metrics.Feedback.WithLabels("mqtt", "anomaly", "applied").Value == 1, "the label arrived over MQTT");
        Assert.Equal("anomaly", service.Store.LabelOf("fine.png"));
        Assert.Null(service.Store.Find("fine.png", TestModel.Shape));
        Assert.Equal(1, service.Metrics.Feedback.WithLabels("mqtt", "invalid", "invalid").Value);
        Assert.Equal(1, service.Metrics.Feedback.WithLabels("mqtt", "anomaly", "unknown_id").Value);
        Assert.Equal(1, service.Metrics.Feedback.WithLabels("mqtt", "anomaly", "applied").Value);
    }

    [Fact]
    public void Confirmed_anomalies_and_too_recent_samples_never_reach_the_training_set()
    {
        using var store = new NormalSampleStore(Options.Create(new NormalStoreOptions { Path = "normals.db" }), new PathResolver(_dir.Path), new MonitorMetrics());
        var t0 = DateTimeOffset.Parse("2026-05-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture);
        store.AddRange(TestModel.Samples(30, seed: 1, receivedAt: t0), TestModel.Shape);
        var anomaly = TestModel.Samples(1, seed: 9)[0].Pixels;
        // Confirmed before it ever reached the store: a later copy of it is excluded too.
        store.Label("late", FeedbackLabel.Anomaly, "http", t0, TestModel.Shape, anomaly, 0, 1);
        store.AddRange(TestModel.Samples(1, seed: 9, prefix: "late", receivedAt: t0).Select(s => s with { ItemId = "late" }).ToList(), TestModel.Shape);
        foreach (var id in new[] { "s3", "s7", "s11" })
            store.Label(id, FeedbackLabel.Anomaly, "mqtt", t0, TestModel.Shape, store.Find(id, TestModel.Shape)!, 0, 1);
        store.AddRange(TestModel.Samples(5, seed: 2, prefix: "recent", receivedAt: t0.AddHours(2)), TestModel.Shape);

        var snapshot = store.Snapshot(TestModel.Shape, receivedBefore: t0.AddHours(1));
        Assert.Equal(27, snapshot.Images.Count);
        Assert.DoesNotContain(snapshot.Images.Ids, id => id is "s3" or "s7" or "s11" or "late" || id.StartsWith("recent", StringComparison.Ordinal));
        Assert.Equal(4, store.ConfirmedAnomalies(TestModel.Shape).Count);

        var later = store.Snapshot(TestModel.Shape, receivedBefore: t0.AddHours(3));
        Assert.Equal(32, later.Images.Count);
        Assert.NotEqual(snapshot.Fingerprint, later.Fingerprint);
    }
}
