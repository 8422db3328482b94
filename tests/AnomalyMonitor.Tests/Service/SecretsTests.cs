using AnomalyMonitor.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace AnomalyMonitor.Tests.Service;

public sealed class SecretsTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task The_broker_password_comes_from_a_file_and_never_reaches_the_log()
    {
        const string Secret = "s3cret-Zq81-never-log-me";
        await using var broker = await Mosquitto.StartAsync(("monitor", Secret));
        TestModel.CopyTo(Path.Combine(_dir.Path, "models"));
        File.WriteAllText(_dir.File("mqtt-password"), Secret + "\n");
        var capture = new LogCapture();
        var logs = capture.Lines;
        await using var service = await TestService.StartAsync(_dir.Path, new Dictionary<string, string?>
        {
            ["Mqtt:Broker"] = broker.Address,
            ["Mqtt:ClientId"] = "svc-secret",
            ["Mqtt:Username"] = "monitor",
            ["Mqtt:PasswordFile"] = _dir.File("mqtt-password"),
            ["Ingest:Mqtt:Enabled"] = "true",
            ["Logging:LogLevel:Default"] = "Trace",
        }, capture.Attach);

        await Wait.UntilAsync(() => service.App.Services.GetRequiredServiceOf<AnomalyMonitor.Mqtt.MqttSource>().Connected
            && service.App.Services.GetRequiredServiceOf<AnomalyMonitor.Alerts.AlertPublisher>().Connected, "both connections authenticated");
        Assert.NotEmpty(logs);
        Assert.DoesNotContain(logs, l => l.Contains(Secret, StringComparison.Ordinal));
        var config = service.App.Services.GetRequiredService<Microsoft.Extensions.Configuration.IConfiguration>();
        Assert.Null(config["Mqtt:Password"]);
    }
}
