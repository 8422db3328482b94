using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using AnomalyMonitor.Core.Imaging;
using AnomalyMonitor.Core.Models;
using AnomalyMonitor.Core.Training;
using AnomalyMonitor.Tests.Support;
using MQTTnet;
using MQTTnet.Protocol;
using static TorchSharp.torch;

namespace AnomalyMonitor.Benchmarks;

/// <summary>
/// A backlog drained by a freshly started service: N messages (JSON envelopes of MNIST PNGs, 5% of them
/// anomalies) queue in Mosquitto for the service's persistent session while it is down, then
/// `anomaly-monitor run` starts as a new process and the time until it has judged them all is measured
/// (start-up included); repeated R times, each run right after the last. --flood publishes while the
/// service runs instead. --rival keeps a second service with the same instance name (so the same MQTT
/// client ids) running meanwhile: what a previous run still alive, or a second instance configured
/// alike, does to the broker's session.
/// </summary>
internal static class BacklogBenchmark
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static async Task<int> RunAsync(string dataDir, int messages, int runs, string arch, bool flood, bool rival)
    {
        var (train, test) = Mnist.Load(dataDir);
        var root = Path.Combine(Path.GetTempPath(), "am-backlog-" + Guid.NewGuid().ToString("N")[..8]);
        Console.WriteLine($"# backlog: {messages} messages {(flood ? "published while the service runs" : "queued before it starts")}, {runs} runs, {arch} model{(rival ? ", with a rival instance of the same name" : "")}; {Mnist.Machine()}");
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
            image = Convert.ToBase64String(Mnist.Png(i % 20 == 0 ? others.Image(i) : ones.Image(i % ones.Count), test.Shape)),
        })).ToArray();

        await using var broker = await Mosquitto.StartAsync();
        int port = Ports.Free();
        var config = Path.Combine(root, "backlog.json");
        File.WriteAllText(config, JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["Mqtt"] = new { Broker = broker.Address },
            ["Fleet"] = new { Instance = "backlog" },
            ["Ingest"] = new { Folder = new { Enabled = false } },
            ["Web"] = new { Urls = $"http://127.0.0.1:{port}" },
            ["Evidence"] = new { MaxCount = 2000 },
            ["Alerts"] = new { MaxPerMinute = 1_000_000 },
            ["Retrain"] = new { Enabled = false },
            ["Logging"] = new { LogLevel = new { Default = "Warning" } },
        }));
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };

        // Once, to create the persistent session the backlog queues for.
        using (var first = Service(root, config))
        {
            await WaitAsync(http, s => s.GetProperty("mqttIngestConnected").ValueKind == JsonValueKind.True);
            await StopAsync(first);
        }
        Process? rivalProcess = null;
        if (rival)
        {
            var rivalRoot = root + "-rival";
            Directory.CreateDirectory(rivalRoot);
            File.WriteAllText(Path.Combine(rivalRoot, "backlog.json"), File.ReadAllText(config).Replace($"127.0.0.1:{port}", $"127.0.0.1:{Ports.Free()}", StringComparison.Ordinal));
            CopyDirectory(Path.Combine(root, "models"), Path.Combine(rivalRoot, "models"));
            rivalProcess = Service(rivalRoot, Path.Combine(rivalRoot, "backlog.json"));
        }

        using var publisher = new MqttClientFactory().CreateMqttClient();
        await publisher.ConnectAsync(new MqttClientOptionsBuilder().WithTcpServer("127.0.0.1", broker.Port).WithClientId("backlog-pub")
            .WithProtocolVersion(MQTTnet.Formatter.MqttProtocolVersion.V500).Build());
        async Task PublishAllAsync()
        {
            for (int i = 0; i < messages; i++)
                await publisher.PublishAsync(new MqttApplicationMessageBuilder().WithTopic("anomaly-monitor/images/backlog")
                    .WithPayload(payloads[i % payloads.Length]).WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
        }

        var seconds = new List<double>();
        for (int run = 1; run <= runs; run++)
        {
            if (!flood) await PublishAllAsync();
            var clock = Stopwatch.StartNew();
            using var service = Service(root, config);
            if (flood)
            {
                await WaitAsync(http, s => s.GetProperty("mqttIngestConnected").ValueKind == JsonValueKind.True);
                clock.Restart();
                _ = Task.Run(PublishAllAsync);
            }
            var progress = new List<long>();
            long last = 0;
            var mark = Stopwatch.StartNew();
            long judged = 0;
            while (judged < messages && clock.Elapsed < TimeSpan.FromMinutes(3))
            {
                await Task.Delay(50);
                judged = await JudgedAsync(http);
                if (mark.Elapsed.TotalSeconds < 1) continue;
                progress.Add(judged - last);
                last = judged;
                mark.Restart();
            }
            double s = clock.Elapsed.TotalSeconds;
            seconds.Add(s);
            Console.WriteLine($"run {run}: {judged} of {messages} judged in {s:0.00} s ({judged / s:0} items/s); per second: {string.Join(' ', progress)}");
            await StopAsync(service);
        }
        if (rivalProcess is not null) await StopAsync(rivalProcess);
        var sorted = seconds.Order().ToArray();
        double median = sorted[sorted.Length / 2];
        Console.WriteLine($"median {median:0.00} s, slowest {sorted[^1]:0.00} s ({sorted[^1] / median:0.00}x the median); runs within 2x the median: {seconds.Count(x => x <= 2 * median)} of {runs}");
        try { Directory.Delete(root, true); } catch (IOException) { }
        return 0;
    }

    /// <summary>`anomaly-monitor run` in its own process, from the build beside this harness.</summary>
    internal static Process Service(string root, string config)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "anomaly-monitor.dll");
        var start = new ProcessStartInfo("dotnet", [dll, "run", "--config", config]) { WorkingDirectory = root, RedirectStandardOutput = true, RedirectStandardError = true };
        var process = Process.Start(start)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, e) => { if (e.Data is { } line && line.Contains("fail:", StringComparison.Ordinal)) Console.Error.WriteLine(line); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    internal static async Task StopAsync(Process process)
    {
        if (!process.HasExited) Process.Start("kill", ["-TERM", process.Id.ToString(Inv)])!.WaitForExit();
        await process.WaitForExitAsync();
    }

    internal static async Task<long> JudgedAsync(HttpClient http)
    {
        try
        {
            var status = await http.GetFromJsonAsync<JsonElement>("/api/status");
            return status.GetProperty("judged").GetInt64();
        }
        catch (HttpRequestException)
        {
            return 0; // still starting
        }
    }

    internal static async Task WaitAsync(HttpClient http, Func<JsonElement, bool> condition)
    {
        while (true)
        {
            try
            {
                if (condition(await http.GetFromJsonAsync<JsonElement>("/api/status"))) return;
            }
            catch (HttpRequestException)
            {
            }
            await Task.Delay(50);
        }
    }

    private static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from)) File.Copy(f, Path.Combine(to, Path.GetFileName(f)), true);
    }
}
