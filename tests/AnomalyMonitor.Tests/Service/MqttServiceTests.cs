using Microsoft.Extensions.DependencyInjection;
using System.Text.Json;
using AnomalyMonitor.Tests.Support;

namespace AnomalyMonitor.Tests.Service;

/// <summary>The service against a real Mosquitto broker: QoS 1, persistent sessions, the outbox.</summary>
public sealed class MqttServiceTests : IAsyncLifetime
{
    private const string Alerts = "anomaly-monitor/alerts";
    private readonly TempDir _dir = new();
    private Mosquitto _broker = null!;

    public async Task InitializeAsync()
    {
        _broker = await Mosquitto.StartAsync();
        TestModel.CopyTo(Path.Combine(_dir.Path, "models"));
    }

    public async Task DisposeAsync()
    {
        await _broker.DisposeAsync();
        _dir.Dispose();
    }

    private Dictionary<string, string?> Settings(string clientId) => new()
    {
        ["Mqtt:Broker"] = _broker.Address,
        ["Mqtt:ClientId"] = clientId,
        ["Ingest:Mqtt:Enabled"] = "true",
        ["Ingest:Folder:Enabled"] = "false",
    };

    private static string Envelope(string id, byte[] png, string source) =>
        JsonSerializer.Serialize(new { id, image = Convert.ToBase64String(png), contentType = "image/png", source, metadata = new { line = "3" } });

    [Fact]
    public async Task Published_images_are_judged_and_only_anomalies_are_alerted_for_every_payload_kind()
    {
        await using var service = await TestService.StartAsync(_dir.Path, Settings("svc-kinds"));
        await using var subscriber = await MqttTestClient.ConnectAsync(_broker.Port, "sub-kinds", subscribe: Alerts);
        await using var publisher = await MqttTestClient.ConnectAsync(_broker.Port, "pub-kinds");
        await Wait.UntilAsync(() => service.App.Services.GetRequiredServiceOf<AnomalyMonitor.Mqtt.MqttSource>().Connected, "the service to subscribe");

        for (int i = 0; i < 12; i++) await publisher.PublishAsync("anomaly-monitor/images/cam-raw", TestModel.NormalPng(i));
        for (int i = 0; i < 4; i++) await publisher.PublishAsync("anomaly-monitor/images/cam-raw", TestModel.AnomalyPng(i));
        await publisher.PublishAsync("anomaly-monitor/images/cam-env", Envelope("env-normal", TestModel.NormalPng(12), "line-3"));
        await publisher.PublishAsync("anomaly-monitor/images/cam-env", Envelope("env-anomaly", TestModel.AnomalyPng(1), "line-3"));
        var batch = "[" + string.Join(",", Envelope("b-0", TestModel.NormalPng(13), "batch"), Envelope("b-1", TestModel.AnomalyPng(0), "batch"), Envelope("b-2", TestModel.NormalPng(14), "batch")) + "]";
        await publisher.PublishAsync("anomaly-monitor/images/cam-batch", batch);
        await publisher.PublishAsync("anomaly-monitor/images/cam-bad", "{ this is not json");

        const int images = 12 + 4 + 2 + 3;
        await Wait.UntilAsync(() => service.Pipeline.Judged >= images, $"{images} images judged");
        await Wait.UntilAsync(() => subscriber.Alerts(Alerts).Count >= 6, "6 alerts");
        // A sentinel anomaly, sent once everything else is judged: alerts leave the outbox in order, so when
        // its alert arrives, no alert for the earlier images can still be on its way.
        await publisher.PublishAsync("anomaly-monitor/images/cam-sentinel", Envelope("sentinel", TestModel.AnomalyPng(2), "sentinel"));
        // The alert can arrive before its image is counted as judged (settling is the last step).
        await Wait.UntilAsync(() => subscriber.Alerts(Alerts).Any(a => a.GetProperty("id").GetString() == "sentinel") && service.Pipeline.Judged >= images + 1, "the sentinel's alert");
        var alerts = subscriber.Alerts(Alerts).Where(a => a.GetProperty("id").GetString() != "sentinel").ToList();
        Assert.Equal(images + 1, service.Pipeline.Judged);
        Assert.Equal(6, alerts.Count);
        Assert.Equal(7, service.Count("anomaly"));
        Assert.Equal(15, service.Count("normal"));
        var ids = alerts.Select(a => a.GetProperty("id").GetString()).ToList();
        Assert.Contains("env-anomaly", ids);
        Assert.Contains("b-1", ids);
        Assert.DoesNotContain("env-normal", ids);
        var env = alerts.Single(a => a.GetProperty("id").GetString() == "env-anomaly");
        Assert.Equal("line-3", env.GetProperty("source").GetString());
        Assert.Equal("3", env.GetProperty("metadata").GetProperty("line").GetString());
        foreach (var field in new[] { "receivedAt", "judgedAt", "score", "threshold", "zScore", "mean", "stddev", "modelVersion", "evidence" })
            Assert.True(env.TryGetProperty(field, out _), $"alert lacks {field}");
        Assert.True(env.GetProperty("score").GetDouble() > env.GetProperty("threshold").GetDouble());
        await service.EvidenceWrittenAsync();
        foreach (var kind in new[] { "original", "reconstruction", "heatmap", "record" })
            Assert.True(File.Exists(Path.Combine(_dir.Path, "evidence", env.GetProperty("evidence").GetProperty(kind).GetString()!)), kind);
        // The malformed message was refused, counted and kept.
        Assert.Equal(1, service.Count("rejected"));
        Assert.Single(Directory.GetFiles(Path.Combine(_dir.Path, "state", "quarantine"), "*.reason.txt"));
    }

    [Fact]
    public async Task A_message_of_many_refused_images_is_quarantined_once_and_a_few_each_on_their_own()
    {
        await using var service = await TestService.StartAsync(_dir.Path, Settings("svc-junk"));
        await using var publisher = await MqttTestClient.ConnectAsync(_broker.Port, "pub-junk");
        await Wait.UntilAsync(() => service.App.Services.GetRequiredServiceOf<AnomalyMonitor.Mqtt.MqttSource>().Connected, "the service to subscribe");
        int many = AnomalyMonitor.Mqtt.MqttSource.MaxQuarantinedPerMessage * 4;
        var junk = "[" + string.Join(",", Enumerable.Repeat("0", many)) + "]";
        await publisher.PublishAsync("anomaly-monitor/images/cam-junk", junk);
        await publisher.PublishAsync("anomaly-monitor/images/cam-few", "[" + Envelope("few-ok", TestModel.NormalPng(0), "few") + ",1,2]");
        var quarantine = Path.Combine(_dir.Path, "state", "quarantine");
        await Wait.UntilAsync(() => Directory.Exists(quarantine) && Directory.GetFiles(quarantine, "*.reason.txt").Length >= 3, "the quarantined files");
        await Wait.UntilAsync(() => service.Pipeline.Judged >= 1, "the good image judged");
        await Wait.UntilAsync(() => service.Count("rejected") >= many + 2, "every refused image counted");
        var kept = Directory.GetFiles(quarantine, "*.bin").Select(File.ReadAllText).ToList();
        // The junk message once, whole; the two refused elements of the other each as its own text.
        Assert.Equal(3, kept.Count);
        Assert.Single(kept, k => k == junk);
        Assert.Contains("1", kept);
        Assert.Contains("2", kept);
        var reasons = Directory.GetFiles(quarantine, "*.reason.txt").Select(File.ReadAllText).ToList();
        Assert.Single(reasons, r => r.Contains($"{many} images refused", StringComparison.Ordinal));
        Assert.Equal(many + 2, service.Count("rejected"));
    }

    [Fact]
    public async Task A_service_restart_mid_stream_loses_no_message()
    {
        await using var subscriber = await MqttTestClient.ConnectAsync(_broker.Port, "sub-restart", subscribe: Alerts);
        await using var publisher = await MqttTestClient.ConnectAsync(_broker.Port, "pub-restart");
        var settings = Settings("svc-restart");
        double judged;
        var anomalyIds = new List<string>();
        await using (var first = await TestService.StartAsync(_dir.Path, settings))
        {
            await Wait.UntilAsync(() => first.App.Services.GetRequiredServiceOf<AnomalyMonitor.Mqtt.MqttSource>().Connected, "subscribed");
            for (int i = 0; i < 20; i++)
            {
                bool anomaly = i % 5 == 0;
                var id = $"r-{i}";
                if (anomaly) anomalyIds.Add(id);
                await publisher.PublishAsync("anomaly-monitor/images/cam", Envelope(id, anomaly ? TestModel.AnomalyPng(i) : TestModel.NormalPng(i), "cam"));
            }
            await Wait.UntilAsync(() => first.Pipeline.Judged >= 5, "some judged before the restart");
            await first.StopAsync();
            judged = first.Pipeline.Judged;
        }
        // While the service is down, the broker queues for its persistent session.
        for (int i = 20; i < 40; i++)
        {
            bool anomaly = i % 5 == 0;
            var id = $"r-{i}";
            if (anomaly) anomalyIds.Add(id);
            await publisher.PublishAsync("anomaly-monitor/images/cam", Envelope(id, anomaly ? TestModel.AnomalyPng(i) : TestModel.NormalPng(i), "cam"));
        }
        await using var second = await TestService.StartAsync(_dir.Path, settings);
        await Wait.UntilAsync(() => judged + second.Pipeline.Judged >= 40, "all 40 judged across both runs");
        await Wait.UntilAsync(() => anomalyIds.All(id => subscriber.Alerts(Alerts).Any(a => a.GetProperty("id").GetString() == id)), "an alert for every anomaly");
    }

    [Fact]
    public async Task A_broker_restart_loses_no_item_and_no_alert()
    {
        // A persistent subscriber, as an alerting integration would be.
        await using (var s = await MqttTestClient.ConnectAsync(_broker.Port, "sub-outage", persistent: true, Alerts)) await s.DisconnectAsync();
        var settings = Settings("svc-outage");
        settings["Ingest:Folder:Enabled"] = "true";
        await using var service = await TestService.StartAsync(_dir.Path, settings);
        await Wait.UntilAsync(() => service.App.Services.GetRequiredServiceOf<AnomalyMonitor.Alerts.AlertPublisher>().Connected, "alerts connected");

        await _broker.StopAsync();
        await Wait.UntilAsync(() => !service.App.Services.GetRequiredServiceOf<AnomalyMonitor.Alerts.AlertPublisher>().Connected, "the service to notice the outage");
        // Items keep arriving through the folder while the broker is down; their alerts wait in the outbox.
        for (int i = 0; i < 5; i++) await File.WriteAllBytesAsync(Path.Combine(service.Inbox, $"down-{i}.png"), TestModel.AnomalyPng(i));
        for (int i = 0; i < 5; i++) await File.WriteAllBytesAsync(Path.Combine(service.Inbox, $"ok-{i}.png"), TestModel.NormalPng(i));
        await Wait.UntilAsync(() => service.Pipeline.Judged >= 10, "10 judged during the outage");
        Assert.True(service.Metrics.OutboxSize.Value >= 5, $"outbox holds {service.Metrics.OutboxSize.Value}");

        await _broker.StartProcessAsync();
        Assert.True(File.Exists(_broker.PersistenceFile), "the broker saved its sessions when it stopped");
        // Reconnect without subscribing again: the alerts arrive only if the broker kept the session and queued them.
        await using var subscriber = await MqttTestClient.ConnectAsync(_broker.Port, "sub-outage", persistent: true);
        await Wait.UntilAsync(() => Enumerable.Range(0, 5).All(i => subscriber.Alerts(Alerts).Any(a => a.GetProperty("id").GetString() == $"down-{i}.png")), "all 5 alerts after the broker came back");
        await Wait.UntilAsync(() => service.Metrics.OutboxSize.Value == 0, "the outbox drained");
        // The subscriber side reconnected too, with its session: images published now are judged.
        await Wait.UntilAsync(() => service.App.Services.GetRequiredServiceOf<AnomalyMonitor.Mqtt.MqttSource>().Connected, "ingest reconnected");
        await using (var publisher = await MqttTestClient.ConnectAsync(_broker.Port, "pub-outage"))
            await publisher.PublishAsync("anomaly-monitor/images/after", Envelope("after-outage", TestModel.AnomalyPng(3), "cam"));
        long judgedBefore = service.Pipeline.Judged;
        try
        {
            await Wait.UntilAsync(() => subscriber.Alerts(Alerts).Any(a => a.GetProperty("id").GetString() == "after-outage"), "an image sent after the outage judged and alerted");
        }
        catch (TimeoutException e)
        {
            // Failed once in 36 runs (2026-12-02) with no trace of where the item stopped: say which stage it reached.
            var publisherConnected = service.App.Services.GetRequiredServiceOf<AnomalyMonitor.Alerts.AlertPublisher>().Connected;
            throw new TimeoutException($"{e.Message}. Judged since the publish: {service.Pipeline.Judged - judgedBefore}; outbox {service.Metrics.OutboxSize.Value}; " +
                $"ingest connected {service.App.Services.GetRequiredServiceOf<AnomalyMonitor.Mqtt.MqttSource>().Connected}; alerts connected {publisherConnected}; " +
                $"alerts received: {string.Join(", ", subscriber.Alerts(Alerts).Select(a => a.GetProperty("id").GetString()))}", e);
        }
        // Judged files leave processing/ on the folder's mover thread, after their records: wait for it.
        await Wait.UntilAsync(() => Directory.GetFiles(Path.Combine(service.Inbox, "processed", "anomaly")).Length == 5
            && Directory.GetFiles(Path.Combine(service.Inbox, "processed", "normal")).Length == 5, "the outage's 10 files moved");
    }
}

public sealed class EmbeddedBrokerTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>The test model judging MQTT images from the service's own broker on <paramref name="port"/>.</summary>
    private Task<TestService> StartEmbeddedAsync(int port, Dictionary<string, string?>? extra = null)
    {
        TestModel.CopyTo(Path.Combine(_dir.Path, "models"));
        var settings = new Dictionary<string, string?>
        {
            ["Mqtt:Broker"] = "",
            ["Mqtt:Embedded:Port"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Ingest:Mqtt:Enabled"] = "true",
        };
        foreach (var (k, v) in extra ?? []) settings[k] = v;
        return TestService.StartAsync(_dir.Path, settings);
    }

    [Fact]
    public async Task Embedded_broker_takes_images_and_delivers_alerts_and_status()
    {
        int port = Ports.Free();
        await using var service = await StartEmbeddedAsync(port);
        await using var client = await MqttTestClient.ConnectAsync(port, "embedded-user", subscribe: ["anomaly-monitor/alerts", "anomaly-monitor/status"]);
        await Wait.UntilAsync(() => service.App.Services.GetRequiredServiceOf<AnomalyMonitor.Mqtt.MqttSource>().Connected, "subscribed");
        await client.PublishAsync("anomaly-monitor/images/e", TestModel.NormalPng(0));
        await client.PublishAsync("anomaly-monitor/images/e", TestModel.AnomalyPng(0));
        await Wait.UntilAsync(() => client.Alerts("anomaly-monitor/alerts").Count == 1 && service.Pipeline.Judged >= 2, "one alert, both judged");
        Assert.Equal(2, service.Pipeline.Judged);
        var instance = service.App.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<AnomalyMonitor.Fleet.FleetOptions>>().Value.EffectiveInstance;
        Assert.Contains(client.Alerts("anomaly-monitor/status"), s => s.GetProperty("state").GetString() == "online" && s.GetProperty("instance").GetString() == instance);
        Assert.Equal(instance, client.Alerts("anomaly-monitor/alerts").Single().GetProperty("instance").GetString());

        // It has no logins: it must listen on the one configured address (loopback), not on every IPv6 address too.
        using var v6 = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetworkV6, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        var refused = await Record.ExceptionAsync(() => v6.ConnectAsync(System.Net.IPAddress.IPv6Loopback, port));
        Assert.True(refused is System.Net.Sockets.SocketException, $"the broker took a connection on [::1]:{port}");
    }

    [Fact]
    public async Task An_alert_the_broker_keeps_refusing_is_set_aside_and_the_alerts_behind_it_go_out()
    {
        int port = Ports.Free();
        await using var service = await StartEmbeddedAsync(port, new() { ["Alerts:RetryInterval"] = "00:00:00.1" });
        // As an ACL answers in MQTT 5: a PUBACK that refuses this one alert, every time.
        service.App.Services.GetRequiredServiceOf<AnomalyMonitor.Mqtt.EmbeddedBroker>().InterceptPublish = e =>
        {
            if (e.ApplicationMessage.Topic == "anomaly-monitor/alerts" && System.Text.Encoding.UTF8.GetString(System.Buffers.BuffersExtensions.ToArray(e.ApplicationMessage.Payload)).Contains("\"id\":\"poison\"", StringComparison.Ordinal))
            {
                e.ProcessPublish = false;
                e.Response.ReasonCode = MQTTnet.Protocol.MqttPubAckReasonCode.NotAuthorized;
            }
        };
        await using var client = await MqttTestClient.ConnectAsync(port, "dead-letter-user", subscribe: ["anomaly-monitor/alerts"]);
        await Wait.UntilAsync(() => service.App.Services.GetRequiredServiceOf<AnomalyMonitor.Mqtt.MqttSource>().Connected, "subscribed");
        await client.PublishAsync("anomaly-monitor/images/e", JsonSerializer.Serialize(new { id = "poison", image = Convert.ToBase64String(TestModel.AnomalyPng(0)) }));
        await client.PublishAsync("anomaly-monitor/images/e", JsonSerializer.Serialize(new { id = "after", image = Convert.ToBase64String(TestModel.AnomalyPng(1)) }));

        var outbox = service.App.Services.GetRequiredServiceOf<AnomalyMonitor.Alerts.AlertOutbox>();
        await Wait.UntilAsync(() => client.Alerts("anomaly-monitor/alerts").Any(a => a.GetProperty("id").GetString() == "after") && outbox.DeadLetters().Count == 1,
            "the alert behind it delivered and the refused one set aside");
        var (letter, reason) = Assert.Single(outbox.DeadLetters());
        Assert.Contains("\"id\":\"poison\"", System.Text.Encoding.UTF8.GetString(letter.Payload), StringComparison.Ordinal);
        Assert.Contains("NotAuthorized", reason, StringComparison.Ordinal);
        Assert.Equal(1, service.Metrics.OutboxDeadLetters.WithLabels("anomaly").Value);
        Assert.Equal(0, outbox.Count);
        Assert.DoesNotContain(client.Alerts("anomaly-monitor/alerts"), a => a.GetProperty("id").GetString() == "poison");
    }

    /// <summary>
    /// What a new user types first: mosquitto_sub and mosquitto_pub with their defaults (MQTT 3.1.1, an empty
    /// client id, a clean session), which MQTTnet's broker alone would refuse as "identifier rejected".
    /// </summary>
    [Fact]
    public async Task Plain_mosquitto_sub_and_pub_work_against_the_embedded_broker()
    {
        int port = Ports.Free();
        await using var service = await StartEmbeddedAsync(port);
        await Wait.UntilAsync(() => service.App.Services.GetRequiredServiceOf<AnomalyMonitor.Mqtt.MqttSource>().Connected
            && service.App.Services.GetRequiredServiceOf<AnomalyMonitor.Alerts.AlertPublisher>().Connected, "the service connected");
        var p = port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        using var sub = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("mosquitto_sub",
            ["-h", "127.0.0.1", "-p", p, "-t", "anomaly-monitor/alerts/#", "-t", "anomaly-monitor/status", "-v", "-C", "2", "-W", "60"])
        { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var stderr = sub.StandardError.ReadToEndAsync();
        // The retained status arrives first: then the subscription is in place.
        var first = await sub.StandardOutput.ReadLineAsync();
        Assert.True(first is not null && first.StartsWith("anomaly-monitor/status ", StringComparison.Ordinal), $"first line: {first}");

        var png = _dir.File("stripes.png");
        File.WriteAllBytes(png, TestModel.AnomalyPng(0));
        var (code, output) = await Tool.RunAsync("mosquitto_pub", $"-h 127.0.0.1 -p {p} -q 1 -t anomaly-monitor/images/cam1 -f {png}");
        Assert.True(code == 0, "mosquitto_pub: " + output);

        var second = await sub.StandardOutput.ReadLineAsync();
        await sub.WaitForExitAsync();
        Assert.True(sub.ExitCode == 0, $"mosquitto_sub exit {sub.ExitCode}: {await stderr} judged {service.Pipeline.Judged} anomalies {service.Count("anomaly")} rejected {service.Count("rejected")} published {service.Metrics.AlertsPublished.WithLabels("anomaly").Value}");
        Assert.NotNull(second);
        Assert.StartsWith("anomaly-monitor/alerts ", second, StringComparison.Ordinal);
        Assert.Contains("\"source\":\"anomaly-monitor/images/cam1\"", second);
    }
}
