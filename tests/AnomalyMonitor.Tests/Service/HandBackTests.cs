using AnomalyMonitor.Tests.Support;

namespace AnomalyMonitor.Tests.Service;

/// <summary>
/// Items the pipeline hands back after a failure (an injected scoring error stands in for a libtorch fault)
/// are offered again by their source, without a restart; one that fails every time ends rejected as "failed".
/// </summary>
public sealed class HandBackTests : IAsyncLifetime
{
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

    private string In(params string[] parts) => Path.Combine([_dir.Path, "inbox", .. parts]);

    private Task<TestService> StartAsync(string clientId) => TestService.StartAsync(_dir.Path, new Dictionary<string, string?>
    {
        ["Mqtt:Broker"] = _broker.Address,
        ["Mqtt:ClientId"] = clientId,
        ["Ingest:Mqtt:Enabled"] = "true",
        ["Pipeline:RetryDelay"] = "00:00:00.050",
        ["Pipeline:RetryMaxDelay"] = "00:00:00.200",
        ["Pipeline:MaxAttempts"] = "4",
    });

    /// <summary>Fails any batch holding an item whose id contains <paramref name="marker"/>, the first <paramref name="times"/> times.</summary>
    private static Func<IReadOnlyList<AnomalyMonitor.Pipeline.ImageRef>, Exception?> Failing(string marker, int times)
    {
        int failures = 0;
        return batch => batch.Any(d => d.Id.Contains(marker, StringComparison.Ordinal)) && Interlocked.Increment(ref failures) <= times
            ? new InvalidOperationException("injected scoring failure")
            : null;
    }

    [Fact]
    public async Task A_file_and_a_message_handed_back_twice_are_judged_on_the_third_try_without_a_restart()
    {
        await using var service = await StartAsync("svc-handback");
        await Wait.UntilAsync(() => service.App.Services.GetRequiredServiceOf<AnomalyMonitor.Mqtt.MqttSource>().Connected, "subscribed");
        service.App.Services.GetRequiredServiceOf<AnomalyMonitor.Pipeline.ScoringStage>().BeforeScoring = Failing("flaky", times: 4);
        File.WriteAllBytes(In("flaky.png"), TestModel.NormalPng(0));
        await using var publisher = await MqttTestClient.ConnectAsync(_broker.Port, "pub-handback");
        await publisher.PublishAsync("anomaly-monitor/images/cam", System.Text.Json.JsonSerializer.Serialize(new { id = "flaky-message", image = Convert.ToBase64String(TestModel.AnomalyPng(0)) }));

        await Wait.UntilAsync(() => File.Exists(In("processed", "normal", "flaky.png")), "the file judged after its retries");
        await Wait.UntilAsync(() => service.Count("anomaly") == 1, "the message judged after its retries");
        Assert.Empty(Directory.GetFileSystemEntries(In("processing")));
        Assert.Equal(0, service.Count("rejected"));
        // Acknowledged: the same session, resumed, gets nothing redelivered before a message sent after the restart.
        await service.StopAsync();
        await using var again = await StartAsync("svc-handback");
        await Wait.UntilAsync(() => again.App.Services.GetRequiredServiceOf<AnomalyMonitor.Mqtt.MqttSource>().Connected, "subscribed again");
        await publisher.PublishAsync("anomaly-monitor/images/cam", System.Text.Json.JsonSerializer.Serialize(new { id = "after-restart", image = Convert.ToBase64String(TestModel.NormalPng(1)) }));
        // Judged is counted last, after the verdict's metric: wait for it, then check nothing else came.
        await Wait.UntilAsync(() => again.Count("normal") == 1 && again.Pipeline.Judged >= 1, "the message sent after the restart judged");
        Assert.Equal(1, again.Pipeline.Judged);
    }

    [Fact]
    public async Task An_item_that_fails_every_time_is_rejected_as_failed_after_MaxAttempts()
    {
        await using var service = await StartAsync("svc-poison");
        await Wait.UntilAsync(() => service.App.Services.GetRequiredServiceOf<AnomalyMonitor.Mqtt.MqttSource>().Connected, "subscribed");
        service.App.Services.GetRequiredServiceOf<AnomalyMonitor.Pipeline.ScoringStage>().BeforeScoring = Failing("poison", times: int.MaxValue);
        File.WriteAllBytes(In("poison.png"), TestModel.NormalPng(0));
        await using var publisher = await MqttTestClient.ConnectAsync(_broker.Port, "pub-poison");
        await publisher.PublishAsync("anomaly-monitor/images/cam", System.Text.Json.JsonSerializer.Serialize(new { id = "poison-message", image = Convert.ToBase64String(TestModel.NormalPng(1)) }));

        await Wait.UntilAsync(() => File.Exists(In("rejected", "poison.png.reason.txt")), "the file rejected");
        Assert.Contains("failed", File.ReadAllText(In("rejected", "poison.png.reason.txt")));
        Assert.Contains("injected scoring failure", File.ReadAllText(In("rejected", "poison.png.reason.txt")));
        await Wait.UntilAsync(() => Directory.GetFiles(Path.Combine(_dir.Path, "state", "quarantine"), "*.reason.txt").Length == 1, "the message quarantined");
        Assert.Equal(2, service.Metrics.Rejected.WithLabels("folder", "failed").Value + service.Metrics.Rejected.WithLabels("anomaly-monitor/images/cam", "failed").Value);

        // The others still flow.
        File.WriteAllBytes(In("fine.png"), TestModel.NormalPng(2));
        await Wait.UntilAsync(() => File.Exists(In("processed", "normal", "fine.png")), "a good file judged");
    }
}
