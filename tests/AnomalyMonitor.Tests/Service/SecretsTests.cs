using System.Collections.Concurrent;
using AnomalyMonitor.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

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
        var logs = new ConcurrentQueue<string>();
        await using var service = await TestService.StartAsync(_dir.Path, new Dictionary<string, string?>
        {
            ["Mqtt:Broker"] = broker.Address,
            ["Mqtt:ClientId"] = "svc-secret",
            ["Mqtt:Username"] = "monitor",
            ["Mqtt:PasswordFile"] = _dir.File("mqtt-password"),
            ["Ingest:Mqtt:Enabled"] = "true",
            ["Logging:LogLevel:Default"] = "Trace",
        }, builder => builder.Logging.AddProvider(new CaptureProvider(logs)));

        await Wait.UntilAsync(() => service.App.Services.GetRequiredServiceOf<AnomalyMonitor.Mqtt.MqttSource>().Connected
            && service.App.Services.GetRequiredServiceOf<AnomalyMonitor.Alerts.AlertPublisher>().Connected, "both connections authenticated");
        Assert.NotEmpty(logs);
        Assert.DoesNotContain(logs, l => l.Contains(Secret, StringComparison.Ordinal));
        var config = service.App.Services.GetRequiredService<Microsoft.Extensions.Configuration.IConfiguration>();
        Assert.Null(config["Mqtt:Password"]);
    }

    private sealed class CaptureProvider(ConcurrentQueue<string> sink) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => new Capture(sink);
        public void Dispose() { }

        private sealed class Capture(ConcurrentQueue<string> sink) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
            public bool IsEnabled(LogLevel logLevel) => true;
            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                sink.Enqueue(formatter(state, exception) + exception);
        }
    }
}
