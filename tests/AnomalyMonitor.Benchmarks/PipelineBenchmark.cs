using AnomalyMonitor.Hosting;
using AnomalyMonitor.State;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using AnomalyMonitor.Core.Data;
using AnomalyMonitor.Core.Imaging;
using AnomalyMonitor.Core.Models;
using AnomalyMonitor.Core.Storage;
using AnomalyMonitor.Core.Training;
using AnomalyMonitor.Pipeline;
using AnomalyMonitor.Tests.Support;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using MQTTnet;
using MQTTnet.Protocol;
using TorchSharp;
using static TorchSharp.torch;

namespace AnomalyMonitor.Benchmarks;

/// <summary>
/// The service end to end at 28x28 (conv): throughput through the folder and through a real Mosquitto
/// broker against raw model forward at the same batch size, alert latency at half load, and RSS and
/// live tensors over 200,000 items.
/// </summary>
internal static class PipelineBenchmark
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static async Task<int> RunAsync(string dataDir, int soakItems)
    {
        var (train, test) = Mnist.Load(dataDir);
        var root = Path.Combine(Path.GetTempPath(), "am-bench-" + Guid.NewGuid().ToString("N")[..8]);
        var modelDir = Path.Combine(root, "models");
        Console.WriteLine($"# pipeline, conv 28x28x1; {Mnist.Machine()}");
        ModelBuilder.TrainAndSave(train.Where(l => l == 1), new BuildRequest
        {
            Spec = ModelSpec.Create(ModelSpec.Conv, train.Shape),
            Training = new TrainingOptions { Epochs = 3, Seed = 1 },
        }, modelDir, CPU, TimeProvider.System);
        var ones = test.Where(l => l == 1);
        var others = test.Where(l => l != 1);
        const int Batch = 32;
        double raw = RawForward(modelDir, ones, Batch);
        Console.WriteLine($"raw model forward, batch {Batch}: {raw:0} img/s (median of 5)");

        await using var broker = await Mosquitto.StartAsync();
        await using var app = await StartServiceAsync(root, broker.Address);
        var pipeline = app.Services.GetRequiredService<PipelineService>();
        var inbox = Path.Combine(root, "inbox");

        // Folder, one PNG per file: the file-system work per file (claim, read, move) is part of the cost.
        var pngs = Enumerable.Range(0, 3000).Select(i => ImageEncoder.EncodePng(ones.Image(i % ones.Count), ones.Shape)).ToList();
        double folderPng = await TimeAsync(pipeline, pngs.Count, () =>
        {
            var staging = Path.Combine(root, "staging");
            Directory.CreateDirectory(staging);
            for (int i = 0; i < pngs.Count; i++) File.WriteAllBytes(Path.Combine(staging, $"f{i:D5}.png"), pngs[i]);
            foreach (var f in Directory.GetFiles(staging)) File.Move(f, Path.Combine(inbox, Path.GetFileName(f)));
            return Task.CompletedTask;
        });
        // Folder, IDX batch files: many images per file.
        var idx = Idx(ones, 10_000);
        double folderIdx = await TimeAsync(pipeline, 10_000, () => { Drop(root, inbox, "batch-images-idx3-ubyte", idx); return Task.CompletedTask; });

        // MQTT through Mosquitto, raw PNG payloads, QoS 1.
        using var publisher = await ConnectAsync(broker.Port, "bench-pub");
        double mqtt = await TimeAsync(pipeline, 10_000, async () =>
        {
            for (int i = 0; i < 10_000; i++)
                await publisher.PublishAsync(Message("anomaly-monitor/images/bench", pngs[i % pngs.Count]));
        });
        Console.WriteLine("| path | items | img/s | vs raw forward |");
        Console.WriteLine("|---|---|---|---|");
        Console.WriteLine($"| folder, one PNG per file | {pngs.Count} | {folderPng:0} | {folderPng / raw:P0} |");
        Console.WriteLine($"| folder, IDX batch file | 10000 | {folderIdx:0} | {folderIdx / raw:P0} |");
        Console.WriteLine($"| MQTT via Mosquitto, PNG payloads | 10000 | {mqtt:0} | {mqtt / raw:P0} |");

        // Latency from publish to alert received, at half the measured MQTT rate, 10% anomalies.
        await LatencyAsync(broker.Port, pipeline, ones, others, rate: mqtt / 2, count: 3000);
        await LatencyAsync(broker.Port, pipeline, ones, others, rate: mqtt / 10, count: 1000);

        // Soak: RSS and live tensors over many items, through IDX batch files (the fastest path, so the most items per minute).
        Console.WriteLine($"soak: {soakItems} items in IDX files of 10,000");
        Console.WriteLine("| items | RSS MiB | TorchSharp live tensors |");
        Console.WriteLine("|---|---|---|");
        long start = pipeline.Judged;
        for (int done = 0; done < soakItems; done += 10_000)
        {
            Drop(root, inbox, $"soak{done:D7}-images-idx3-ubyte", idx);
            while (pipeline.Judged - start < done + 10_000) await Task.Delay(20);
            if (done % 50_000 == 0 || done + 10_000 >= soakItems)
            {
                GC.Collect();
                Console.WriteLine($"| {done + 10_000} | {Process.GetCurrentProcess().WorkingSet64 / 1048576.0:0} | {torch.Tensor.TotalCount} |");
            }
        }
        await app.StopAsync();
        try { Directory.Delete(root, true); } catch (IOException) { }
        return 0;
    }

    /// <summary>Writes beside the inbox and renames in, as a well-behaved producer does (StableFor is 0 here).</summary>
    internal static void Drop(string root, string inbox, string name, byte[] content)
    {
        var temp = Path.Combine(root, name);
        File.WriteAllBytes(temp, content);
        File.Move(temp, Path.Combine(inbox, name));
    }

    private static async Task<WebApplication> StartServiceAsync(string root, string broker)
    {
        var app = ServiceHost.Build(overrides: new Dictionary<string, string?>
        {
            ["Models:Path"] = "models",
            ["Mqtt:Broker"] = broker,
            ["Mqtt:ClientId"] = "bench",
            ["Ingest:Folder:StableFor"] = "00:00:00",
            ["Ingest:Folder:RescanInterval"] = "00:00:00.500",
            ["Ingest:Folder:DeleteProcessed"] = "true",
            ["Web:Urls"] = "http://127.0.0.1:0",
            ["Evidence:MaxCount"] = "1000",
            ["Alerts:MaxPerMinute"] = "1000000", // measure every alert, not storm control
            ["Logging:LogLevel:Default"] = "Warning",
        }, paths: new PathResolver(root));
        await app.StartAsync();
        var pipeline = app.Services.GetRequiredService<PipelineService>();
        var mqtt = app.Services.GetRequiredService<AnomalyMonitor.Mqtt.MqttSource>();
        while (!mqtt.Connected || !app.Services.GetRequiredService<ModelHolder>().IsJudging) await Task.Delay(50);
        return app;
    }

    private static async Task<double> TimeAsync(PipelineService pipeline, int items, Func<Task> feed)
    {
        long before = pipeline.Judged;
        var clock = Stopwatch.StartNew();
        await feed();
        while (pipeline.Judged - before < items) await Task.Delay(2);
        return items / clock.Elapsed.TotalSeconds;
    }

    private static async Task LatencyAsync(int port, PipelineService pipeline, ImageSet ones, ImageSet others, double rate, int count)
    {
        var latencies = new ConcurrentBag<double>();
        using var subscriber = await ConnectAsync(port, "bench-sub");
        subscriber.ApplicationMessageReceivedAsync += e =>
        {
            using var doc = JsonDocument.Parse(e.ApplicationMessage.ConvertPayloadToString());
            if (doc.RootElement.TryGetProperty("metadata", out var m) && m.TryGetProperty("sent", out var sent))
                latencies.Add(Stopwatch.GetElapsedTime(long.Parse(sent.GetString()!, Inv)).TotalMilliseconds);
            return Task.CompletedTask;
        };
        await subscriber.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter("anomaly-monitor/alerts", MqttQualityOfServiceLevel.AtLeastOnce).Build());
        using var publisher = await ConnectAsync(port, "bench-lat");
        var interval = TimeSpan.FromSeconds(1 / rate);
        var clock = Stopwatch.StartNew();
        int anomalies = 0;
        for (int i = 0; i < count; i++)
        {
            // Sleep rather than spin: a spinning publisher would take a core from the service on this 2-core machine.
            while (clock.Elapsed < interval * i) await Task.Delay(1);
            bool anomaly = i % 10 == 0;
            if (anomaly) anomalies++;
            var png = ImageEncoder.EncodePng(anomaly ? others.Image(i % others.Count) : ones.Image(i % ones.Count), ones.Shape);
            var envelope = JsonSerializer.Serialize(new { id = $"lat-{i}", image = Convert.ToBase64String(png), metadata = new { sent = Stopwatch.GetTimestamp().ToString(Inv) } });
            await publisher.PublishAsync(Message("anomaly-monitor/images/latency", System.Text.Encoding.UTF8.GetBytes(envelope)));
        }
        var deadline = Stopwatch.StartNew();
        while (latencies.Count < anomalies && deadline.Elapsed < TimeSpan.FromSeconds(30)) await Task.Delay(20);
        var sorted = latencies.Order().ToArray();
        Console.WriteLine($"latency publish → alert received, {rate:0} msg/s offered, {count} messages, alerts for {sorted.Length} of {anomalies} anomalous images (the rest were judged normal): " +
            $"p50 {Percentile(sorted, 50):0.0} ms, p99 {Percentile(sorted, 99):0.0} ms, max {sorted.LastOrDefault():0.0} ms");
    }

    private static double Percentile(double[] sorted, double p) => sorted.Length == 0 ? double.NaN : AnomalyMonitor.Core.Thresholds.Statistics.Percentile(sorted, p);

    private static double RawForward(string modelDir, ImageSet images, int batch)
    {
        using var model = ModelFiles.Load(modelDir, CPU);
        using var all = tensor(images.Pixels, [images.Count, 1, 28, 28]);
        var runs = new List<double>();
        for (int r = 0; r < 6; r++)
        {
            var c = Stopwatch.StartNew();
            using (no_grad())
            {
                for (int b = 0; b + batch <= images.Count; b += batch)
                {
                    using var scope = NewDisposeScope();
                    _ = model.Module.forward(all.narrow(0, b, batch)).sum().item<float>();
                }
            }
            if (r > 0) runs.Add(images.Count / batch * batch / c.Elapsed.TotalSeconds);
        }
        return runs.Order().ElementAt(runs.Count / 2);
    }

    internal static byte[] Idx(ImageSet images, int count)
    {
        var bytes = new byte[16 + count * 784];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(bytes, 0x803);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4), count);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(8), 28);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(12), 28);
        for (int i = 0; i < count; i++)
        {
            var img = images.Image(i % images.Count);
            for (int p = 0; p < 784; p++) bytes[16 + (i * 784) + p] = (byte)Math.Round(img[p] * 255);
        }
        return bytes;
    }

    private static async Task<IMqttClient> ConnectAsync(int port, string id)
    {
        var client = new MqttClientFactory().CreateMqttClient();
        await client.ConnectAsync(new MqttClientOptionsBuilder().WithTcpServer("127.0.0.1", port).WithClientId(id)
            .WithProtocolVersion(MQTTnet.Formatter.MqttProtocolVersion.V500).Build());
        return client;
    }

    private static MqttApplicationMessage Message(string topic, byte[] payload) =>
        new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload(payload).WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build();
}
