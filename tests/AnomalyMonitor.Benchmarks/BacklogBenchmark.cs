using AnomalyMonitor.Hosting;
using AnomalyMonitor.State;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using AnomalyMonitor.Core.Imaging;
using AnomalyMonitor.Core.Models;
using AnomalyMonitor.Core.Training;
using AnomalyMonitor.Pipeline;
using AnomalyMonitor.Tests.Support;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using MQTTnet;
using MQTTnet.Protocol;
using static TorchSharp.torch;

namespace AnomalyMonitor.Benchmarks;

/// <summary>
/// A backlog drained by a freshly started service: N messages (JSON envelopes of MNIST PNGs) queue in
/// Mosquitto for the service's persistent session while it is down, then the service starts and the time
/// to judge them all is measured; repeated R times, each run right after the last, as after a restart.
/// </summary>
internal static class BacklogBenchmark
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static async Task<int> RunAsync(string dataDir, int messages, int runs, string arch, bool flood = false)
    {
        var (train, test) = Mnist.Load(dataDir);
        var root = Path.Combine(Path.GetTempPath(), "am-backlog-" + Guid.NewGuid().ToString("N")[..8]);
        Console.WriteLine($"# backlog: {messages} queued messages, {runs} runs, {arch} model; {Mnist.Machine()}");
        ModelBuilder.TrainAndSave(train.Where(l => l == 1), new BuildRequest
        {
            Spec = ModelSpec.Create(arch, train.Shape),
            Training = new TrainingOptions { Epochs = 2, Seed = 1 },
        }, Path.Combine(root, "models"), CPU, TimeProvider.System);
        // 5% anomalies, as in a production stream: 1s (the model's class) with every twentieth image another digit.
        var ones = test.Where(l => l == 1);
        var others = test.Where(l => l != 1);
        var payloads = Enumerable.Range(0, 2000).Select(i => JsonSerializer.SerializeToUtf8Bytes(new
        {
            id = $"b-{i}",
            image = Convert.ToBase64String(ImageEncoder.EncodePng(i % 20 == 0 ? others.Image(i) : ones.Image(i % ones.Count), test.Shape)),
        })).ToArray();

        await using var broker = await Mosquitto.StartAsync();
        var settings = new Dictionary<string, string?>
        {
            ["Models:Path"] = "models",
            ["Mqtt:Broker"] = broker.Address,
            ["Mqtt:ClientId"] = "backlog",
            ["Ingest:Folder:Enabled"] = "false",
            ["Web:Urls"] = "http://127.0.0.1:0",
            ["Evidence:MaxCount"] = "2000",
            ["Alerts:MaxPerMinute"] = "1000000",
            ["Retrain:Enabled"] = "false",
            ["Logging:LogLevel:Default"] = "Warning",
        };
        // Once, to create the persistent session the backlog queues for.
        await using (var first = await StartAsync(root, settings))
        {
            var source = first.Services.GetRequiredService<AnomalyMonitor.Mqtt.MqttSource>();
            while (!source.Connected) await Task.Delay(20);
            await first.StopAsync();
        }

        using var publisher = new MqttClientFactory().CreateMqttClient();
        await publisher.ConnectAsync(new MqttClientOptionsBuilder().WithTcpServer("127.0.0.1", broker.Port).WithClientId("backlog-pub")
            .WithProtocolVersion(MQTTnet.Formatter.MqttProtocolVersion.V500).Build());
        var seconds = new List<double>();
        for (int run = 1; run <= runs; run++)
        {
            async Task PublishAllAsync()
            {
                for (int i = 0; i < messages; i++)
                    await publisher.PublishAsync(new MqttApplicationMessageBuilder().WithTopic("anomaly-monitor/images/backlog")
                        .WithPayload(payloads[i % payloads.Length]).WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
            }
            if (!flood) await PublishAllAsync();
            var clock = Stopwatch.StartNew();
            await using var app = await StartAsync(root, settings);
            var pipeline = app.Services.GetRequiredService<PipelineService>();
            var apps = new List<WebApplication>();
            if (flood)
            {
                // The service is up and subscribed; the publisher floods it as fast as it can.
                var source = app.Services.GetRequiredService<AnomalyMonitor.Mqtt.MqttSource>();
                while (!source.Connected) await Task.Delay(10);
                clock.Restart();
                _ = Task.Run(PublishAllAsync);
            }
            var progress = new List<string>();
            long lastJudged = 0;
            var lastMark = Stopwatch.StartNew();
            long judgedBefore = 0;
            if (Environment.GetEnvironmentVariable("AM_BACKLOG_RESTART") == "1")
            {
                // A restart mid-stream: the next service resumes the session with the first one's in-flight window unacknowledged.
                while (pipeline.Judged < messages / 2) await Task.Delay(5);
                judgedBefore = pipeline.Judged;
                await app.StopAsync();
                Console.WriteLine($"  restart after {judgedBefore} judged, at {clock.Elapsed.TotalSeconds:0.00} s");
                var second = await StartAsync(root, settings);
                pipeline = second.Services.GetRequiredService<PipelineService>();
                apps.Add(second);
            }
            while (judgedBefore + pipeline.Judged < messages)
            {
                await Task.Delay(20);
                if (lastMark.Elapsed.TotalSeconds >= 1)
                {
                    progress.Add((judgedBefore + pipeline.Judged - lastJudged).ToString(Inv));
                    lastJudged = judgedBefore + pipeline.Judged;
                    lastMark.Restart();
                }
            }
            double s = clock.Elapsed.TotalSeconds;
            seconds.Add(s);
            var items = app.Services.GetRequiredService<AnomalyMonitor.Telemetry.MonitorMetrics>().Items;
            double anomalies = items.GetAllLabelValues().Where(l => l[1] == "anomaly").Sum(l => items.WithLabels(l).Value);
            Console.WriteLine($"run {run}: {messages} judged in {s:0.00} s ({messages / s:0} items/s, {anomalies} anomalies); per second: {string.Join(' ', progress)}");
            await app.StopAsync();
            foreach (var other in apps)
            {
                await other.StopAsync();
                await other.DisposeAsync();
            }
        }
        var sorted = seconds.Order().ToArray();
        double median = sorted[sorted.Length / 2];
        Console.WriteLine($"median {median:0.00} s, slowest {sorted[^1]:0.00} s ({sorted[^1] / median:0.00}x the median); runs within 2x the median: {seconds.Count(x => x <= 2 * median)} of {runs}");
        try { Directory.Delete(root, true); } catch (IOException) { }
        return 0;
    }

    private static async Task<WebApplication> StartAsync(string root, Dictionary<string, string?> settings)
    {
        var app = ServiceHost.Build(overrides: settings, paths: new PathResolver(root));
        await app.StartAsync();
        return app;
    }
}
