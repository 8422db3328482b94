using AnomalyMonitor.Hosting;
using AnomalyMonitor.State;
using System.Diagnostics;
using System.Globalization;
using AnomalyMonitor.Core.Models;
using AnomalyMonitor.Core.Storage;
using AnomalyMonitor.Core.Training;
using AnomalyMonitor.Pipeline;
using AnomalyMonitor.Retraining;
using AnomalyMonitor.Samples;
using Microsoft.Extensions.DependencyInjection;
using static TorchSharp.torch;

namespace AnomalyMonitor.Benchmarks;

/// <summary>
/// Retraining in the running service: a 20-epoch retrain on 20,000 stored 28x28 samples, alone and while
/// the service scores, and the scoring throughput during it against idle.
/// </summary>
internal static class RetrainBenchmark
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static async Task<int> RunAsync(string dataDir, int samples, int threads)
    {
        var (train, test) = Mnist.Load(dataDir);
        var root = Path.Combine(Path.GetTempPath(), "am-bench-" + Guid.NewGuid().ToString("N")[..8]);
        Console.WriteLine($"# retrain, conv 28x28x1, {samples} stored samples, 20 epochs, Retrain:Threads={threads}; {Mnist.Machine()}");
        var v1 = Path.Combine(root, "models", "v1");
        ModelBuilder.TrainAndSave(train.Subset([.. Enumerable.Range(0, 2000)]), new BuildRequest
        {
            Spec = ModelSpec.Create(ModelSpec.Conv, train.Shape),
            Training = new TrainingOptions { Epochs = 2, Seed = 1 },
            Version = 1,
        }, v1, CPU, TimeProvider.System);
        File.WriteAllText(Path.Combine(root, "models", "current"), "v1\n");

        var app = ServiceHost.Build(overrides: new Dictionary<string, string?>
        {
            ["Models:Path"] = "models",
            ["Ingest:Mqtt:Enabled"] = "false",
            ["Ingest:Folder:StableFor"] = "00:00:00",
            ["Ingest:Folder:RescanInterval"] = "00:00:00.500",
            ["Ingest:Folder:DeleteProcessed"] = "true",
            ["Mqtt:Embedded:Port"] = "18830",
            ["Web:Urls"] = "http://127.0.0.1:0",
            ["Retrain:Epochs"] = "20",
            ["Retrain:Patience"] = "0",
            ["Retrain:Threads"] = threads.ToString(Inv),
            ["Retrain:Seed"] = "1",
            ["Judge:Accept"] = "-100", // nothing scored here enters the store: it holds exactly the samples below
            ["Logging:LogLevel:Default"] = "Warning",
        }, paths: new PathResolver(root));
        await app.StartAsync();
        var holder = app.Services.GetRequiredService<ModelHolder>();
        while (!holder.IsJudging) await Task.Delay(50);
        var pipeline = app.Services.GetRequiredService<PipelineService>();
        var store = app.Services.GetRequiredService<NormalSampleStore>();
        var retrainer = app.Services.GetRequiredService<Retrainer>();
        for (int start = 0; start < samples; start += 1000)
        {
            int n = Math.Min(1000, samples - start);
            store.AddRange([.. Enumerable.Range(start, n).Select(i => new NewSample($"mnist-train#{i}", "bench", DateTimeOffset.UnixEpoch, 0, 1, train.Image(i % train.Count).ToArray()))], train.Shape);
        }
        var inbox = Path.Combine(root, "inbox");
        var idx = PipelineBenchmark.Idx(test, 10_000);

        var idle = new List<double>();
        for (int i = 0; i < 3; i++) idle.Add(await ScoreAsync(root, inbox, pipeline, idx, $"idle{i}"));

        // Alone: nothing else to do.
        var alone = await retrainer.RunAsync(force: true, CancellationToken.None);
        // Beside scoring: keep 10,000-item files coming for as long as it trains.
        var during = new List<double>();
        var run = Task.Run(() => retrainer.RunAsync(force: true, CancellationToken.None));
        while (!retrainer.Running) await Task.Delay(10);
        int file = 0;
        while (retrainer.Running) during.Add(await ScoreAsync(root, inbox, pipeline, idx, $"busy{file++}"));
        var beside = await run;
        await app.StopAsync();
        await app.DisposeAsync();

        Console.WriteLine("| run | result | trained on | epochs | seconds |");
        Console.WriteLine("|---|---|---|---|---|");
        foreach (var (name, o) in new[] { ("alone", alone), ("while scoring", beside) })
        {
            var manifest = ModelFiles.ReadManifest(Path.Combine(root, "models", $"v{o.Version}"));
            Console.WriteLine($"| {name} | {o.Result} | {o.Samples} | {manifest.History.Count} | {o.Seconds:0} |");
        }
        Console.WriteLine();
        Console.WriteLine("| scoring (IDX files of 10,000) | files | median img/s | vs idle |");
        Console.WriteLine("|---|---|---|---|");
        double idleMedian = Median(idle);
        Console.WriteLine($"| idle | {idle.Count} | {idleMedian:0} | 100% |");
        Console.WriteLine($"| while retraining | {during.Count} | {Median(during):0} | {Median(during) / idleMedian:P0} |");
        try { Directory.Delete(root, true); } catch (IOException) { }
        return 0;
    }

    private static async Task<double> ScoreAsync(string root, string inbox, PipelineService pipeline, byte[] idx, string name)
    {
        long before = pipeline.Judged;
        var clock = Stopwatch.StartNew();
        PipelineBenchmark.Drop(root, inbox, $"{name}-images-idx3-ubyte", idx);
        while (pipeline.Judged - before < 10_000) await Task.Delay(5);
        return 10_000 / clock.Elapsed.TotalSeconds;
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count == 0 ? double.NaN : sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }
}
