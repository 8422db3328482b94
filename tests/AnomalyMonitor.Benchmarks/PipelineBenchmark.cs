using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using AnomalyMonitor.Core.Data;
using AnomalyMonitor.Core.Imaging;
using AnomalyMonitor.Core.Models;
using AnomalyMonitor.Core.Scoring;
using AnomalyMonitor.Core.Storage;
using AnomalyMonitor.Core.Training;
using AnomalyMonitor.Hosting;
using AnomalyMonitor.Pipeline;
using AnomalyMonitor.Pipeline.Scoring;
using AnomalyMonitor.Sinks;
using AnomalyMonitor.State;
using AnomalyMonitor.Tests.Support;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using MQTTnet;
using MQTTnet.Protocol;
using TorchSharp;
using static TorchSharp.torch;

namespace AnomalyMonitor.Benchmarks;

/// <summary>
/// The service end to end at 28x28: throughput through the folder (one PNG per file; IDX batch files) and
/// through a real Mosquitto broker (raw PNG payloads, published by a separate process), each against raw
/// model forward at the same batch size measured in the same run; the CPU microseconds per item of each
/// stage; publish-to-alert latency at 10% and 50% of the measured capacity; and RSS and live tensors over
/// a soak. --scorer null swaps the model for a benchmark-only scorer, to measure the ceiling of the path.
/// The MQTT paths are measured twice: with the publisher running beside the service (all three processes on
/// the same cores), and drained from a backlog queued with the broker while the service was stopped (what a
/// restart after an outage does, and the service's own ceiling with only Mosquitto beside it). The CPU the
/// rest of the machine used meanwhile (Mosquitto, the publisher, anything else) is reported per item.
/// </summary>
internal static class PipelineBenchmark
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;
    private const int Batch = 32;
    // 3,000 files took about a second, and the first batch's wait and the last file's move were a few percent of it.
    private const int FolderFiles = 10_000;
    private const string Topic = "anomaly-monitor/images/bench";
    private const string LatencyPath = "MQTT via Mosquitto, JSON envelopes, 1 in 10 anomalous";
    private const string QueuedPath = "MQTT via Mosquitto, raw PNG payloads, queued backlog";
    /// <summary>Items of a queued drain judged before its clock starts: the restarted service's connect and first batches are not its rate.</summary>
    private const int QueuedWarmUp = 2_000;

    private sealed record Run(string Path, int Items, double Rate, double Raw, double RawTwo, double DecodeUs, double ScoreUs, double SinkUs, double ProcessUs, string PerSink, double OthersUs, double MeanBatch = double.NaN, double SideBySide = double.NaN)
    {
        /// <summary>CPU µs per image of raw forward two batches side by side (as the lanes score a flood).</summary>
        public double ModelCpuUs { get; init; } = double.NaN;

        /// <summary>CPU µs per item by thread name, the largest first.</summary>
        public string Threads { get; init; } = "";

        /// <summary>The service's own CPU per item beyond the model's: decoding, MQTT, judging, sinks, settling.</summary>
        public double PathCpuUs => ProcessUs - ModelCpuUs;

        /// <summary>
        /// Images a second if the service's own path cost nothing: every core shared between the model's CPU and what
        /// the rest of the machine (Mosquitto, the publisher) spent per item. Assuming the model costs the service as much CPU
        /// per image as it costs raw forward, a target above it cannot be met here. In the folder paths, the process's CPU
        /// (and so the part beyond the model) includes the benchmark's own renames of the files into the inbox.
        /// </summary>
        public double Ceiling => Environment.ProcessorCount * 1e6 / (ModelCpuUs + Math.Max(0, OthersUs));
    }

    public static async Task<int> RunAsync(string dataDir, string scorer, int runs, int soakItems, int mqttItems, int lanes = 0, IReadOnlyDictionary<string, string?>? settings = null, int warmUp = 1, IReadOnlyList<string>? brokerLines = null, int latencyNice = 0,
        double latencyCapacity = 0, int latencySeconds = 6)
    {
        _settings = settings ?? new Dictionary<string, string?>();
        if (scorer is not ("conv" or "recommended" or "null")) throw new ArgumentException($"--scorer must be conv, recommended or null, was {scorer}.");
        bool nullScorer = scorer == "null";
        var (train, test) = Mnist.Load(dataDir);
        var root = Path.Combine(Path.GetTempPath(), "am-bench-" + Guid.NewGuid().ToString("N")[..8]);
        var modelDir = Path.Combine(root, "models");
        Console.WriteLine($"# pipeline, {scorer switch { "null" => "null scorer (no model)", "recommended" => "the recommended detector (conv, latent 64, 5-Gaussian latent score)", _ => "conv model, reconstruction score" }} at 28x28x1, batch {Batch}, {warmUp} warm-up + {runs} runs, Models:Lanes {lanes}{string.Concat(_settings.Select(kv => $", {kv.Key}={kv.Value}"))}{string.Concat((brokerLines ?? []).Select(l => $", broker: {l}"))}{(latencyNice != 0 ? $", latency publisher at nice {latencyNice}" : "")}{(latencyCapacity > 0 ? $", latency loads only, {runs} × at a capacity of {latencyCapacity:0} msg/s" : "")}, {latencySeconds} s a load; {Gen0Budget()}; {Mnist.Machine()}");
        // Three epochs either way: the benchmark measures the path, not the verdicts. "recommended" is what a cold start
        // builds, whose latent score runs the encoder and the mixture but not the decoder.
        ModelBuilder.TrainAndSave(train.Where(l => l == 1), scorer == "recommended"
            ? new BuildRequest
            {
                Spec = ModelSpec.Create(Recommended.Architecture, train.Shape, Recommended.Latent(Recommended.Architecture)),
                Training = new TrainingOptions { Epochs = 3, Seed = 1, Score = Recommended.Score, Augmentation = Recommended.Augmentation, LatentComponents = Recommended.LatentComponents },
            }
            : new BuildRequest { Spec = ModelSpec.Create(ModelSpec.Conv, train.Shape), Training = new TrainingOptions { Epochs = 3, Seed = 1 } },
            modelDir, CPU, TimeProvider.System);
        var ones = test.Where(l => l == 1);
        var pngs = Enumerable.Range(0, 3000).Select(i => Mnist.Png(ones.Image(i % ones.Count), ones.Shape)).ToList();
        var noise = Enumerable.Range(0, 50).Select(i => Mnist.Png(Synthetic.Noise(new Random(i), 28), ones.Shape)).ToList();
        var normalFile = Path.Combine(root, "normal.payloads");
        var mixedFile = Path.Combine(root, "mixed.payloads");
        Publisher.WritePayloads(normalFile, pngs.Select(p => (p, false)));
        // For latency: one in ten a noise image, anomalous by a wide margin for the model and for the null scorer alike.
        Publisher.WritePayloads(mixedFile, Enumerable.Range(0, 1000).Select(i => i % 10 == 0 ? (noise[i / 10 % noise.Count], true) : (pngs[i], false)));
        var idx = Idx(ones, 10_000);

        await using var broker = await Mosquitto.StartAsync(extraConfig: brokerLines);
        var app = await StartServiceAsync(root, broker.Address, nullScorer, lanes);
        var inbox = Path.Combine(root, "inbox");

        var results = new List<Run>();
        var warm = new List<Run>();
        // Runs 1 - warmUp .. 0 warm up, uncounted: in a fresh process the JIT's background tier-up of the hot path takes
        // 70-190 µs of CPU an item for the first tens of thousands of items, which a service up for days has long finished.
        // --runs 0 is the soak alone, with no warm-up.
        if (warmUp < 0) throw new ArgumentException($"--warm-up must be 0 or more, was {warmUp}.");
        // --latency-capacity: no throughput paths, only the latency loads at a capacity given (fast A/Bs of the tail).
        if (latencyCapacity > 0)
        {
            for (int i = 0; i < warmUp; i++)
                warm.Add(await MeasureAsync(app, LatencyPath, mqttItems, (double.NaN, double.NaN, double.NaN), async () =>
                    await StartPublisherAsync(broker.Port, mixedFile, mqttItems, rate: 0, envelope: true)));
            await LatencyLoadsAsync(app, broker.Port, mixedFile, latencyCapacity, runs, latencyNice, latencySeconds);
            await app.StopAsync();
            await app.DisposeAsync();
            try { Directory.Delete(root, true); } catch (IOException) { }
            return 0;
        }
        for (int run = runs > 0 ? 1 - warmUp : 1; run <= runs; run++)
        {
            var into = run <= 0 ? warm : results;
            var raw = nullScorer ? (double.NaN, double.NaN, double.NaN) : RawForward(modelDir, ones, Batch);
            // Written beside the inbox before the clock starts and renamed in (as a well-behaved producer does): the producer's writes are not the service's time.
            var staging = Path.Combine(root, "staging");
            Directory.CreateDirectory(staging);
            for (int i = 0; i < FolderFiles; i++) File.WriteAllBytes(Path.Combine(staging, $"r{run}-f{i:D5}.png"), pngs[i % pngs.Count]);
            into.Add(await MeasureAsync(app, "folder, one PNG per file", FolderFiles, raw, () =>
            {
                foreach (var f in Directory.GetFiles(staging)) File.Move(f, Path.Combine(inbox, Path.GetFileName(f)));
                return Task.CompletedTask;
            }));
            into.Add(await MeasureAsync(app, "folder, IDX batch file", 10_000, raw, () =>
            {
                Drop(root, inbox, $"r{run}-images-idx3-ubyte", idx);
                return Task.CompletedTask;
            }));
            into.Add(await MeasureAsync(app, "MQTT via Mosquitto, raw PNG payloads", mqttItems, raw, async () =>
                await StartPublisherAsync(broker.Port, normalFile, mqttItems, rate: 0, envelope: false)));
            // The latency workload flat out: its capacity, not the raw-PNG one, sets the 10% and 50% loads (anomalies write evidence and alerts).
            into.Add(await MeasureAsync(app, LatencyPath, mqttItems, raw, async () =>
                await StartPublisherAsync(broker.Port, mixedFile, mqttItems, rate: 0, envelope: true)));
            // Stopped, the service's persistent session queues what is published; started again, it drains it. Once
            // with one scoring lane and once with two, in turns, so that the two are compared on the same minute.
            foreach (int queuedLanes in run % 2 == 1 ? new[] { 1, 2 } : [2, 1])
            {
                await app.StopAsync();
                await app.DisposeAsync();
                using (var publisher = await StartPublisherAsync(broker.Port, normalFile, mqttItems + QueuedWarmUp, rate: 0, envelope: false))
                    await publisher.WaitForExitAsync();
                (app, var queued) = await MeasureQueuedAsync(root, broker.Address, nullScorer, queuedLanes, $"{QueuedPath}, Models:Lanes {queuedLanes}", mqttItems, raw);
                into.Add(queued);
            }
            // Back to the run's own setting: the last drain left the service on one lane in every other run, and the
            // next run's live paths were then scored on one lane (runs 3, 5, ... of earlier reports).
            await app.StopAsync();
            await app.DisposeAsync();
            app = await StartServiceAsync(root, broker.Address, nullScorer, lanes);
            foreach (var r in into.TakeLast(6)) Print(run, r);
        }
        Console.WriteLine();
        Console.WriteLine($"medians of {runs} runs (each ratio against raw forward measured in the same run: one batch at a time / two side by side):");
        Console.WriteLine("| path | items | img/s | vs raw forward | vs raw, two side by side | µs/item decode | score+judge | sinks+settle | whole process | rest of the machine | CPU µs/item beyond the model | ceiling with a free path, vs raw forward |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|---|---|");
        foreach (var group in results.GroupBy(r => r.Path))
        {
            double M(Func<Run, double> f) => Median(group.Select(f));
            Console.WriteLine($"| {group.Key} | {group.First().Items} | {M(r => r.Rate):0} | {(nullScorer ? "-" : M(r => r.Rate / r.Raw).ToString("P0", Inv))} | {(nullScorer ? "-" : M(r => r.Rate / r.RawTwo).ToString("P0", Inv))} | " +
                $"{M(r => r.DecodeUs):0.0} | {M(r => r.ScoreUs):0.0} | {M(r => r.SinkUs):0.0} | {M(r => r.ProcessUs):0.0} | {M(r => r.OthersUs):0.0} | " +
                $"{(nullScorer ? "-" : M(r => r.PathCpuUs).ToString("0.0", Inv))} | {(nullScorer ? "-" : M(r => r.Ceiling / r.Raw).ToString("P0", Inv))} |");
        }
        if (!nullScorer && results.Count > 0) Console.WriteLine($"raw model forward, batch {Batch}: {Median(results.Select(r => r.Raw)):0} img/s one at a time, {Median(results.Select(r => r.RawTwo)):0} two side by side, " +
            $"{Median(results.Select(r => r.ModelCpuUs)):0.0} µs of CPU per image side by side (medians)");

        // Latency from publish to alert received, at 10% and 50% of the measured capacity of the same workload.
        double capacity = Median(results.Where(r => r.Path == LatencyPath).Select(r => r.Rate));
        if (runs > 0) await LatencyLoadsAsync(app, broker.Port, mixedFile, capacity, 1, latencyNice, latencySeconds); // --runs 0: the soak alone

        if (soakItems > 0) await SoakAsync(app, root, inbox, idx, soakItems);
        await app.StopAsync();
        await app.DisposeAsync();
        try { Directory.Delete(root, true); } catch (IOException) { }
        return 0;
    }

    /// <summary>
    /// The GC's gen-0 budget in effect: it follows the L3 cache (80 MiB here, with 300 MiB of L3) unless
    /// DOTNET_GCGen0MaxBudget caps it, as the systemd unit does; the half-load tail depends on it (docs/benchmarks.md, 4b).
    /// </summary>
    private static string Gen0Budget() =>
        GC.GetConfigurationVariables().TryGetValue("GCGen0MaxBudget", out var budget) && budget is long bytes and > 0
            ? $"gen-0 budget {bytes / 1048576.0:0.#} MiB" + (Environment.GetEnvironmentVariable("DOTNET_GCGen0MaxBudget") is { } set ? $" (DOTNET_GCGen0MaxBudget={set})" : " (the GC's default)")
            : "gen-0 budget not reported";

    /// <summary>What the last gen-0/1 collection had to do: a long pause over few survivors is not the GC's work.</summary>
    private static string LastEphemeral()
    {
        var gc = GC.GetGCMemoryInfo(GCKind.Ephemeral);
        if (gc.Index == 0) return "no gen-0/1 collection yet";
        var gen0 = gc.GenerationInfo[0];
        return $"the last gen-0/1 collection: gen 0 {gen0.SizeBeforeBytes / 1048576.0:0.0} MiB before it, {gc.PromotedBytes / 1048576.0:0.00} MiB promoted, " +
            $"{gc.PinnedObjectsCount} pinned objects, paused {gc.PauseDurations[0].TotalMilliseconds:0.0} ms";
    }

    private static void Print(int run, Run r) =>
        Console.WriteLine($"{(run <= 0 ? "warm-up" : $"run {run}")}: {r.Path}: {r.Items} in {r.Items / r.Rate:0.00} s, {r.Rate:0} img/s{(double.IsNaN(r.Raw) ? "" : $" ({r.Rate / r.Raw:P0} of raw forward {r.Raw:0}, {r.Rate / r.RawTwo:P0} of two side by side {r.RawTwo:0})")}; " +
            $"µs/item: decode {r.DecodeUs:0.0}, score+judge {r.ScoreUs:0.0}, sinks+settle {r.SinkUs:0.0} (each sink: {r.PerSink}), whole process {r.ProcessUs:0.0}, rest of the machine {r.OthersUs:0.0}" +
            (double.IsNaN(r.MeanBatch) ? "" : $"; mean batch {r.MeanBatch:0.0}") +
            (double.IsNaN(r.SideBySide) ? "" : $", {r.SideBySide:P0} of batches began beside another") +
            (double.IsNaN(r.ModelCpuUs) ? "" : $"; the model's CPU {r.ModelCpuUs:0.0} µs/item, the rest of the path {r.PathCpuUs:0.0}, ceiling with a free path {r.Ceiling / r.Raw:P0} of raw forward") +
            (r.Threads.Length == 0 ? "" : $"; CPU µs/item by thread: {r.Threads}"));

    private static async Task<Run> MeasureAsync(WebApplication app, string path, int items, (double One, double Two, double CpuTwo) raw, Func<Task> feed)
    {
        var pipeline = app.Services.GetRequiredService<PipelineService>();
        var decode = app.Services.GetRequiredService<DecodeStage>();
        var scoring = app.Services.GetRequiredService<ScoringStage>();
        var sinks = app.Services.GetRequiredService<SinkStage>();
        GC.Collect();
        long before = pipeline.Judged, d0 = decode.DecodeTicks, s0 = scoring.ScoreTicks, k0 = sinks.Ticks;
        var perSink0 = sinks.SinkTicks.ToDictionary(p => p.Sink, p => p.Ticks);
        var folder = app.Services.GetRequiredService<AnomalyMonitor.Ingest.FolderSource>();
        long inline0 = folder.MovesOnPipelineThread;
        var metrics = app.Services.GetRequiredService<AnomalyMonitor.Telemetry.MonitorMetrics>();
        double batchSum0 = metrics.BatchSize.Sum, batches0 = metrics.BatchSize.Count, side0 = metrics.SideBySide.Value;
        var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
        var threads0 = ThreadCpu.Snapshot();
        double machine0 = MachineCpuMicroseconds();
        var clock = Stopwatch.StartNew();
        await feed();
        var mqtt = app.Services.GetRequiredService<AnomalyMonitor.Mqtt.MqttSource>();
        var nextTrace = TimeSpan.FromSeconds(20);
        while (pipeline.Judged - before < items)
        {
            await Task.Delay(2);
            if (clock.Elapsed < nextTrace) continue;
            // A run this slow is the collapse issue 11 describes: say where the items are.
            nextTrace += TimeSpan.FromSeconds(5);
            Console.WriteLine($"  slow: {clock.Elapsed.TotalSeconds:0} s, judged {pipeline.Judged - before} of {items}, queue {metrics.QueueDepth.Value}, " +
                $"ingest connected {mqtt.Connected}, takeovers {metrics.MqttSessionTakeovers.WithLabels("ingest").Value}, process CPU {Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds:0.0} s");
        }
        // A folder item is done when its file has left processing/: the mover's queue counts in the time.
        while (folder.PendingMoves > 0) await Task.Delay(1);
        double seconds = clock.Elapsed.TotalSeconds;
        var cpu = (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalMicroseconds;
        string threads = ThreadCpu.PerItem(threads0, ThreadCpu.Snapshot(), items);
        double others = MachineCpuMicroseconds() - machine0 - cpu;
        double Us(long ticks) => ticks * 1e6 / Stopwatch.Frequency / items;
        var perSink = string.Join(", ", sinks.SinkTicks.Select(p => $"{p.Sink.Replace("Sink", "", StringComparison.Ordinal)} {Us(p.Ticks - perSink0[p.Sink]):0.0}"))
            + (folder.MovesOnPipelineThread - inline0 is var inline and > 0 ? $"; {inline} files moved on the sink thread (mover queue full)" : "");
        // Smaller batches cost more forward per image (and below Models:SmallBatch run on one thread): how full they were.
        double batches = Math.Max(1, metrics.BatchSize.Count - batches0);
        double meanBatch = (metrics.BatchSize.Sum - batchSum0) / batches;
        // A second lane scores a batch only when another is already waiting: how often that happened.
        double sideBySide = (metrics.SideBySide.Value - side0) / batches;
        return new Run(path, items, items / seconds, raw.One, raw.Two, Us(decode.DecodeTicks - d0), Us(scoring.ScoreTicks - s0), Us(sinks.Ticks - k0), cpu / items, perSink, others / items, meanBatch, sideBySide) { ModelCpuUs = raw.CpuTwo, Threads = threads };
    }

    /// <summary>
    /// Starts the service again on the same state and broker while the backlog waits for its session, and times
    /// the drain from the <see cref="QueuedWarmUp"/>th item to the last; returns the running service for what follows.
    /// </summary>
    private static async Task<(WebApplication App, Run Run)> MeasureQueuedAsync(string root, string broker, bool nullScorer, int lanes, string path, int items, (double One, double Two, double CpuTwo) raw)
    {
        var app = await StartServiceAsync(root, broker, nullScorer, lanes, waitForMqtt: false);
        var pipeline = app.Services.GetRequiredService<PipelineService>();
        var decode = app.Services.GetRequiredService<DecodeStage>();
        var scoring = app.Services.GetRequiredService<ScoringStage>();
        var sinks = app.Services.GetRequiredService<SinkStage>();
        var metrics = app.Services.GetRequiredService<AnomalyMonitor.Telemetry.MonitorMetrics>();
        while (pipeline.Judged < QueuedWarmUp) await Task.Delay(1);
        long before = pipeline.Judged, d0 = decode.DecodeTicks, s0 = scoring.ScoreTicks, k0 = sinks.Ticks;
        double batchSum0 = metrics.BatchSize.Sum, batches0 = metrics.BatchSize.Count, side0 = metrics.SideBySide.Value;
        var perSink0 = sinks.SinkTicks.ToDictionary(p => p.Sink, p => p.Ticks);
        var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
        var threads0 = ThreadCpu.Snapshot();
        double machine0 = MachineCpuMicroseconds();
        var clock = Stopwatch.StartNew();
        var deadline = TimeSpan.FromMinutes(3);
        while (pipeline.Judged < QueuedWarmUp + items && clock.Elapsed < deadline) await Task.Delay(2);
        double seconds = clock.Elapsed.TotalSeconds;
        long judged = pipeline.Judged - before;
        if (clock.Elapsed >= deadline) Console.WriteLine($"  slow: the queued drain judged {judged} of {items} in {seconds:0} s");
        var cpu = (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalMicroseconds;
        string threads = ThreadCpu.PerItem(threads0, ThreadCpu.Snapshot(), judged);
        double others = MachineCpuMicroseconds() - machine0 - cpu;
        double Us(long ticks) => ticks * 1e6 / Stopwatch.Frequency / judged;
        var perSink = string.Join(", ", sinks.SinkTicks.Select(p => $"{p.Sink.Replace("Sink", "", StringComparison.Ordinal)} {Us(p.Ticks - perSink0[p.Sink]):0.0}"));
        double batches = Math.Max(1, metrics.BatchSize.Count - batches0);
        return (app, new Run(path, (int)judged, judged / seconds, raw.One, raw.Two, Us(decode.DecodeTicks - d0), Us(scoring.ScoreTicks - s0), Us(sinks.Ticks - k0), cpu / judged, perSink, others / judged,
            (metrics.BatchSize.Sum - batchSum0) / batches, (metrics.SideBySide.Value - side0) / batches) { ModelCpuUs = raw.CpuTwo, Threads = threads });
    }

    /// <summary>CPU time of the whole machine (every core, user and system, from /proc/stat) in microseconds.</summary>
    private static double MachineCpuMicroseconds()
    {
        var fields = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries);
        // user nice system idle iowait irq softirq steal: busy is all but idle and iowait; USER_HZ is 100 on Linux.
        long busy = 0;
        for (int i = 1; i <= 8 && i < fields.Length; i++)
            if (i is not 4 and not 5) busy += long.Parse(fields[i], Inv);
        return busy * 1e4;
    }

    /// <summary>Starts the publisher process and returns once it has connected and begins (its start-up is not the service's time).</summary>
    internal static async Task<Process> StartPublisherAsync(int port, string payloads, int count, double rate, bool envelope, int nice = 0)
    {
        var dll = typeof(PipelineBenchmark).Assembly.Location;
        var args = new List<string> { dll, "publish", "--port", port.ToString(Inv), "--topic", Topic, "--payloads", payloads, "--count", count.ToString(Inv), "--rate", rate.ToString(Inv) };
        if (envelope) args.Add("--envelope");
        // Through nice(1) only when asked: every other publisher starts as before.
        if (nice != 0) args.InsertRange(0, ["-n", nice.ToString(Inv), "dotnet"]);
        var process = Process.Start(new ProcessStartInfo(nice != 0 ? "nice" : "dotnet", args) { RedirectStandardOutput = true })!;
        while (await process.StandardOutput.ReadLineAsync() is { } line)
            if (line == "publishing") break;
        _ = process.StandardOutput.ReadToEndAsync();
        return process;
    }

    /// <summary>Writes beside the inbox and renames in, as a well-behaved producer does (StableFor is 0 here).</summary>
    internal static void Drop(string root, string inbox, string name, byte[] content)
    {
        var temp = Path.Combine(root, name);
        File.WriteAllBytes(temp, content);
        File.Move(temp, Path.Combine(inbox, name));
    }

    /// <summary>The run's --set settings, over the benchmark's own.</summary>
    private static IReadOnlyDictionary<string, string?> _settings = new Dictionary<string, string?>();

    private static async Task<WebApplication> StartServiceAsync(string root, string broker, bool nullScorer, int lanes, bool waitForMqtt = true)
    {
        var overrides = new Dictionary<string, string?>
        {
            ["Models:Path"] = "models",
            ["Mqtt:Broker"] = broker,
            ["Ingest:Mqtt:Topics:0"] = "anomaly-monitor/images/#",
            ["Ingest:Folder:StableFor"] = "00:00:00",
            ["Ingest:Folder:RescanInterval"] = "00:00:00.500",
            ["Ingest:Folder:DeleteProcessed"] = "true",
            ["Web:Urls"] = "http://127.0.0.1:0",
            ["Evidence:MaxCount"] = "1000",
            ["Alerts:MaxPerMinute"] = "1000000", // measure every alert, not storm control
            // The schedule's retraining (every 6 h on the clock) once fired mid-soak: its tensors and buffers are not the hot path's.
            ["Retrain:Enabled"] = "false",
            ["Models:Lanes"] = lanes.ToString(Inv),
            ["Logging:LogLevel:Default"] = "Warning",
        };
        foreach (var (key, value) in _settings) overrides[key] = value;
        var app = ServiceHost.Build(overrides: overrides, paths: new PathResolver(root), configure: builder =>
        {
            if (nullScorer) builder.Services.AddSingleton<IBatchScorerFactory, NullScorerFactory>();
        });
        await app.StartAsync();
        var mqtt = app.Services.GetRequiredService<AnomalyMonitor.Mqtt.MqttSource>();
        while (waitForMqtt && (!mqtt.Connected || !app.Services.GetRequiredService<ModelHolder>().IsJudging)) await Task.Delay(50);
        return app;
    }

    /// <summary>The loads at 10% and 50% of <paramref name="capacity"/>, <paramref name="repeats"/> times, each from an empty outbox.</summary>
    private static async Task LatencyLoadsAsync(WebApplication app, int port, string payloads, double capacity, int repeats, int nice, int seconds)
    {
        var outbox = app.Services.GetRequiredService<AnomalyMonitor.Alerts.AlertOutbox>();
        var evidence = app.Services.GetRequiredService<AnomalyMonitor.Evidence.EvidenceStore>();
        for (int i = 0; i < repeats; i++)
            foreach (var share in new[] { 0.1, 0.5 })
            {
                // Alerts of the flood still queued would be counted as this load's: start from an empty outbox.
                while (outbox.Count > 0 || evidence.Queued > 0) await Task.Delay(50);
                await Task.Delay(1000);
                await LatencyAsync(app, port, payloads, capacity * share, share, nice, seconds);
            }
    }

    private static async Task LatencyAsync(WebApplication app, int port, string payloads, double rate, double share, int nice, int seconds)
    {
        var batchSize = app.Services.GetRequiredService<AnomalyMonitor.Telemetry.MonitorMetrics>().BatchSize;
        double batchSum0 = batchSize.Sum, batches0 = batchSize.Count;
        var latencies = new ConcurrentBag<double>();
        // Where each alert's time went, from the alert's own receivedAt and judgedAt (wall clock, this machine):
        // publish → the service received it; received → judged; judged → the subscriber has the alert.
        var parts = new ConcurrentBag<(double Total, double In, double Judge, double Out)>();
        // When each item's batch began scoring (the scoring stage's hook), to split received → judged into the
        // wait for a scorer (decode, batching, the queue of ready batches) and the scoring itself.
        var scoringStarted = new ConcurrentDictionary<string, DateTimeOffset>();
        var splits = new ConcurrentBag<(double Total, double Wait, double Score)>();
        var scoringStage = app.Services.GetRequiredService<ScoringStage>();
        scoringStage.BeforeScoring = images =>
        {
            var now = TimeProvider.System.GetUtcNow();
            foreach (var image in images) scoringStarted[image.Id] = now;
            return null;
        };
        using var subscriber = new MqttClientFactory().CreateMqttClient();
        // The service's own socket buffers (MqttConnection.Build): MQTTnet's 8 KiB would time the subscriber, not the service.
        await subscriber.ConnectAsync(AnomalyMonitor.Mqtt.MqttConnection.Build(new MqttClientOptionsBuilder().WithTcpServer("127.0.0.1", port).WithClientId($"bench-sub-{share}")
            .WithProtocolVersion(MQTTnet.Formatter.MqttProtocolVersion.V500)));
        subscriber.ApplicationMessageReceivedAsync += e =>
        {
            using var doc = JsonDocument.Parse(e.ApplicationMessage.ConvertPayloadToString());
            if (doc.RootElement.TryGetProperty("metadata", out var m) && m.TryGetProperty("sent", out var sent))
            {
                double total = Stopwatch.GetElapsedTime(long.Parse(sent.GetString()!, Inv)).TotalMilliseconds;
                latencies.Add(total);
                var received = doc.RootElement.GetProperty("receivedAt").GetDateTimeOffset();
                var judged = doc.RootElement.GetProperty("judgedAt").GetDateTimeOffset();
                double judge = (judged - received).TotalMilliseconds, outward = (TimeProvider.System.GetUtcNow() - judged).TotalMilliseconds;
                parts.Add((total, total - judge - outward, judge, outward));
                if (doc.RootElement.TryGetProperty("id", out var id) && id.GetString() is { } alertId && scoringStarted.TryRemove(alertId, out var began))
                    splits.Add((total, (began - received).TotalMilliseconds, (judged - began).TotalMilliseconds));
            }
            return Task.CompletedTask;
        };
        await subscriber.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter("anomaly-monitor/alerts", MqttQualityOfServiceLevel.AtLeastOnce).Build());
        int count = (int)Math.Clamp(rate * seconds, 1000, 300_000);
        // The thread pool while it runs: a queue of work items that waits for threads is starvation, not load.
        using var sampling = new CancellationTokenSource();
        long maxPending = 0;
        int maxThreads = 0;
        // The GC's pauses stop every thread of the service (it runs in this process): do they explain the tail?
        int[] gcBefore = [GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2)];
        var pausedBefore = GC.GetTotalPauseDuration();
        // What each message costs the GC: the gen-0 budget over this is how many messages fall between two pauses.
        long allocatedBefore = GC.GetTotalAllocatedBytes(precise: false);
        using var allocations = new AllocationSampler();
        // Exceptions thrown and caught on the way are CPU that no stage reports: count them by type.
        var thrown = new ConcurrentDictionary<string, int>();
        void OnThrown(object? _, System.Runtime.ExceptionServices.FirstChanceExceptionEventArgs e) => thrown.AddOrUpdate(e.Exception.GetType().Name, 1, (_, n) => n + 1);
        AppDomain.CurrentDomain.FirstChanceException += OnThrown;
        double maxPauseMs = 0;
        var sampler = Task.Run(async () =>
        {
            while (!sampling.IsCancellationRequested)
            {
                maxPending = Math.Max(maxPending, ThreadPool.PendingWorkItemCount);
                maxThreads = Math.Max(maxThreads, ThreadPool.ThreadCount);
                foreach (var pause in GC.GetGCMemoryInfo(GCKind.Any).PauseDurations) maxPauseMs = Math.Max(maxPauseMs, pause.TotalMilliseconds);
                try { await Task.Delay(10, sampling.Token); } catch (OperationCanceledException) { }
            }
        });
        try
        {
            using var publisher = await StartPublisherAsync(port, payloads, count, rate, envelope: true, nice);
            // How much CPU the service took while the load ran: "half of capacity" in items is not half the CPU when
            // batches are small (a forward costs more per image, and every item wakes threads of its own).
            var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
            var threads0 = ThreadCpu.Snapshot();
            var busyClock = Stopwatch.StartNew();
            await publisher.WaitForExitAsync();
            double wall = busyClock.Elapsed.TotalMicroseconds;
            double service = (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalMicroseconds;
            string busyThreads = ThreadCpu.PerItem(threads0, ThreadCpu.Snapshot(), count);
            var deadline = Stopwatch.StartNew();
            int anomalies = count / 10;
            while (latencies.Count < anomalies && deadline.Elapsed < TimeSpan.FromSeconds(20)) await Task.Delay(20);
            sampling.Cancel();
            await sampler;
            var sorted = latencies.Order().ToArray();
            Console.WriteLine($"latency publish → alert received at {share:P0} of capacity ({rate:0} msg/s asked, {count / wall * 1e6:0} published, {count} messages, {sorted.Length} alerts for {anomalies} anomalies): " +
                $"p50 {Percentile(sorted, 50):0.0} ms, p99 {Percentile(sorted, 99):0.0} ms, max {sorted.LastOrDefault():0.0} ms");
            if (parts.IsEmpty) return;
            var all = parts.ToArray();
            string Part(string name, Func<(double Total, double In, double Judge, double Out), double> f) => Spread(name, all, p => p.Total, f);
            Console.WriteLine($"  thread pool: up to {maxThreads} threads, up to {maxPending} work items waiting for one; " +
                $"{batchSize.Count - batches0} batches, mean {(batchSize.Sum - batchSum0) / Math.Max(1, batchSize.Count - batches0):0.0} images");
            // Only the service's own figure: /proc/stat samples the machine at each tick, and at a light bursty load it
            // read less than this process's own CPU time, so the machine's share is not printed here.
            Console.WriteLine($"  this process's CPU while publishing (the service, and this benchmark's subscriber): {service / wall:0.00} of {Environment.ProcessorCount} cores, {service / count:0} µs per message (by thread: {busyThreads})");
            Console.WriteLine($"  GC: {GC.CollectionCount(0) - gcBefore[0]} / {GC.CollectionCount(1) - gcBefore[1]} / {GC.CollectionCount(2) - gcBefore[2]} collections of gen 0 / 1 / 2, " +
                $"paused {(GC.GetTotalPauseDuration() - pausedBefore).TotalMilliseconds:0.0} ms in all, longest pause seen {maxPauseMs:0.0} ms, " +
                $"{(GC.GetTotalAllocatedBytes(precise: false) - allocatedBefore) / 1024.0 / count:0.0} KiB allocated per message; {LastEphemeral()}");
            Console.WriteLine($"  allocated, by type (sampled): {allocations.Top(8)}");
            Console.WriteLine($"  exceptions thrown: {thrown.Values.Sum()}{string.Concat(thrown.OrderByDescending(t => t.Value).Select(t => $", {t.Key} {t.Value}"))}");
            Console.WriteLine($"  where it went: {Part("publish → received", p => p.In)}; {Part("received → judged", p => p.Judge)}; {Part("judged → alert received", p => p.Out)}");
            if (splits.IsEmpty) return;
            var split = splits.ToArray();
            Console.WriteLine($"  received → judged: {Spread("received → its batch began scoring", split, p => p.Total, p => p.Wait)}; {Spread("began scoring → judged", split, p => p.Total, p => p.Score)}");
        }
        finally
        {
            scoringStage.BeforeScoring = null;
            AppDomain.CurrentDomain.FirstChanceException -= OnThrown;
        }
    }

    /// <summary>One part of the alerts' latency: its p50 and p99, and its mean over the slowest 1% of alerts by their total.</summary>
    private static string Spread<T>(string name, T[] all, Func<T, double> total, Func<T, double> part)
    {
        var slowest = all.OrderByDescending(total).Take(Math.Max(1, all.Length / 100));
        double[] sorted = [.. all.Select(part).Order()];
        return $"{name} p50 {Percentile(sorted, 50):0.0} / p99 {Percentile(sorted, 99):0.0} ms, in the slowest 1% {slowest.Average(part):0.0} ms";
    }

    /// <summary>RSS and live tensors through IDX batch files (the fastest path: the most items per minute); the first tenth is warm-up.</summary>
    private static async Task SoakAsync(WebApplication app, string root, string inbox, byte[] idx, int soakItems)
    {
        var pipeline = app.Services.GetRequiredService<PipelineService>();
        Console.WriteLine($"soak: {soakItems} items in IDX files of 10,000");
        // RSS split three ways, to say where a swing comes from: the managed heap's live objects, what the GC keeps
        // committed beyond them, and the rest (libtorch, SQLite, SkiaSharp and glibc's arenas).
        Console.WriteLine("| items | RSS MiB | managed live MiB | GC committed MiB | native (RSS − committed) MiB | TorchSharp live tensors |");
        Console.WriteLine("|---|---|---|---|---|---|");
        long start = pipeline.Judged;
        var rss = new List<(int Items, double Mib, long Tensors)>();
        int every = Math.Max(10_000, soakItems / 20 / 10_000 * 10_000);
        for (int done = 0; done < soakItems; done += 10_000)
        {
            Drop(root, inbox, $"soak{done:D7}-images-idx3-ubyte", idx);
            while (pipeline.Judged - start < done + 10_000) await Task.Delay(20);
            if ((done + 10_000) % every != 0 && done + 10_000 < soakItems) continue;
            GC.Collect();
            var point = (done + 10_000, Process.GetCurrentProcess().WorkingSet64 / 1048576.0, torch.Tensor.TotalCount);
            rss.Add(point);
            double live = GC.GetTotalMemory(false) / 1048576.0, committed = GC.GetGCMemoryInfo().TotalCommittedBytes / 1048576.0;
            Console.WriteLine($"| {point.Item1} | {point.Item2:0} | {live:0} | {committed:0} | {point.Item2 - committed:0} | {point.Item3} |");
        }
        var after = rss.Where(r => r.Items > soakItems / 10).ToList();
        if (after.Count == 0) return;
        double first = after[0].Mib;
        Console.WriteLine($"after warm-up ({soakItems / 10} items): RSS {after.Min(r => r.Mib):0}–{after.Max(r => r.Mib):0} MiB, " +
            $"{(after.Min(r => r.Mib) - first) / first:+0.0%;-0.0%} to {(after.Max(r => r.Mib) - first) / first:+0.0%;-0.0%} of {first:0} MiB; live tensors {after.Min(r => r.Tensors)}–{after.Max(r => r.Tensors)}");
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length == 0 ? double.NaN : sorted[sorted.Length / 2];
    }

    private static double Percentile(double[] sorted, double p) => sorted.Length == 0 ? double.NaN : AnomalyMonitor.Core.Thresholds.Statistics.Percentile(sorted, p);

    /// <summary>
    /// Raw forward at batch <paramref name="batch"/>, one batch at a time and two side by side: the median of 7
    /// passes over the images each, interleaved, after one warm-up pass of each.
    /// </summary>
    private static (double One, double Two, double CpuTwo) RawForward(string modelDir, ImageSet images, int batch)
    {
        using var loaded = ModelFiles.Load(modelDir, CPU);
        // A latent score's bare cost is the encoder and the density, not the whole autoencoder.
        nn.Module<Tensor, Tensor> model = loaded.Detector is { UsesLatent: true, Score: ScoreKind.Latent } detector
            ? new LatentForward((IAutoencoder)loaded.Module, detector)
            : loaded.Module;
        using var all = tensor(images.Pixels, [images.Count, 1, 28, 28]);
        var one = new List<double>();
        var two = new List<double>();
        var cpuTwo = new List<double>();
        for (int r = 0; r < 8; r++)
        {
            double a = Forward.OneAtATime(model, all, batch), b = Forward.SideBySide(model, all, batch, out double cpu);
            if (r == 0) continue;
            one.Add(a);
            two.Add(b);
            cpuTwo.Add(cpu);
        }
        return (Median(one), Median(two), Median(cpuTwo));
    }

    private sealed class LatentForward(IAutoencoder autoencoder, Detector detector) : nn.Module<Tensor, Tensor>("latent_forward")
    {
        public override Tensor forward(Tensor input) => detector.LatentScore(autoencoder.Encode(input), CPU);
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
}
