using AnomalyMonitor.Tests.Support;

namespace AnomalyMonitor.Tests.Service;

/// <summary>
/// A backlog in Mosquitto's queue for the service's persistent session, with the broker's in-flight window
/// of 100: drained at the pace of the pipeline, not one window per reconnect. And what happens when two
/// services claim one session.
/// </summary>
public sealed class MqttBacklogTests : IAsyncLifetime
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

    private Dictionary<string, string?> Settings(string instance) => new()
    {
        ["Mqtt:Broker"] = _broker.Address,
        ["Fleet:Instance"] = instance,
        ["Ingest:Mqtt:Enabled"] = "true",
        ["Ingest:Folder:Enabled"] = "false",
        ["Judge:Accept"] = "0", // nothing to store: the test is about the MQTT path
    };

    private static AnomalyMonitor.Mqtt.MqttSource Source(TestService s) => s.App.Services.GetRequiredServiceOf<AnomalyMonitor.Mqtt.MqttSource>();

    private async Task QueueAsync(int count)
    {
        await using var publisher = await MqttTestClient.ConnectAsync(_broker.Port, "backlog-publisher");
        for (int i = 0; i < count; i++) await publisher.PublishAsync("anomaly-monitor/images/cam", TestModel.NormalPng(i));
    }

    /// <summary>
    /// The one test here with a clock: 2,000 queued messages are 20 in-flight windows; a service that waited
    /// a second a window, as the one this guards against did, takes over 20 s. Healthy, it takes about one
    /// second on this machine, so the bound leaves a factor of ten for a loaded CI host.
    /// </summary>
    [Fact]
    public async Task A_backlog_of_twenty_in_flight_windows_drains_in_seconds_not_one_window_a_second()
    {
        var root = Path.Combine(_dir.Path, "a");
        TestModel.CopyTo(Path.Combine(root, "models"));
        await using (var first = await TestService.StartAsync(root, Settings("drain")))
        {
            await Wait.UntilAsync(() => Source(first).Connected, "the session created");
        }
        await QueueAsync(2000);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        await using var service = await TestService.StartAsync(root, Settings("drain"));
        await Wait.UntilAsync(() => service.Pipeline.Judged == 2000, "the backlog drained", seconds: 60);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(15), $"2,000 queued messages took {clock.Elapsed.TotalSeconds:0.0} s");
        Assert.Equal(0, service.Metrics.MqttSessionTakeovers.WithLabels("ingest").Value);
    }

    [Fact]
    public async Task Two_services_with_one_instance_name_are_told_so_and_the_stream_is_not_lost()
    {
        var logs = new LogCapture();
        var a = Path.Combine(_dir.Path, "one");
        var b = Path.Combine(_dir.Path, "two");
        TestModel.CopyTo(Path.Combine(a, "models"));
        TestModel.CopyTo(Path.Combine(b, "models"));
        var settings = Settings("twin");
        settings["Mqtt:ReconnectMin"] = "00:00:00.100";
        settings["Logging:LogLevel:Default"] = "Warning";
        await using var one = await TestService.StartAsync(a, settings, logs.Attach);
        await Wait.UntilAsync(() => Source(one).Connected, "the first subscribed");
        await using var two = await TestService.StartAsync(b, settings, logs.Attach);
        // Each connect takes the session from the other: both notice, and say which client id they fight over.
        await Wait.UntilAsync(() => logs.Lines.Any(l => l.Contains("anomaly-monitor-twin-ingest", StringComparison.Ordinal) && l.Contains("took this session away", StringComparison.Ordinal)),
            "the takeover reported");
        Assert.True(one.Metrics.MqttSessionTakeovers.WithLabels("ingest").Value + two.Metrics.MqttSessionTakeovers.WithLabels("ingest").Value >= 2);

        // Once the rival is gone, the one left drains everything sent meanwhile; nothing is lost between the two.
        await QueueAsync(300);
        await two.StopAsync();
        await Wait.UntilAsync(() => one.Pipeline.Judged + two.Pipeline.Judged >= 300, "every message judged by one of them", seconds: 90);
    }
}
