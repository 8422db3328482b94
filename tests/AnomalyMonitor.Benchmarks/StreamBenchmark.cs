using AnomalyMonitor.Hosting;
using AnomalyMonitor.State;
using System.Diagnostics;
using System.Globalization;
using AnomalyMonitor.Core.Data;
using AnomalyMonitor.Core.Evaluation;
using AnomalyMonitor.Core.Imaging;
using AnomalyMonitor.Core.Models;
using AnomalyMonitor.Core.Storage;
using AnomalyMonitor.Core.Training;
using AnomalyMonitor.Pipeline;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using static TorchSharp.torch;

namespace AnomalyMonitor.Benchmarks;

/// <summary>
/// The real service against `evaluate`: for each class, a model trained with the defaults on the class's
/// training images judges the whole test split through the watched folder (one PNG per image, in the
/// test split's order), and its realised false-alarm rate and recall are set beside what `evaluate`
/// reports for the same model, rule and images. With --cold-start N, the service instead learns its first
/// model from the first N training images of the class it receives, then judges the test split.
/// </summary>
internal static class StreamBenchmark
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>The calibrated rules, each with the false-alarm rate it promises, judged offline on every class's model.</summary>
    private static readonly (string Rule, double Target)[] Calibrated =
        [("conformal:alpha=0.01", 0.01), ("conformal:alpha=0.001", 0.001), ("spot:q=0.001", 0.001), ("spot:q=0.0001", 0.0001), ("percentile:p=99", 0.01)];

    public static async Task<int> RunAsync(string dataDir, string classesText, int seed, int coldStart, string? rule, string[] extra)
    {
        var (train, test) = Mnist.Load(dataDir);
        var classes = classesText.Split(',').Select(int.Parse).ToArray();
        Console.WriteLine($"# stream {Path.GetFileName(Path.GetFullPath(dataDir))}, {(coldStart > 0 ? $"cold start from {coldStart} images" : "defaults")}, rule {rule ?? "default"}" +
            $"{(extra.Length > 0 ? ", " + string.Join(' ', extra) : "")}; {Mnist.Machine()}");
        Console.WriteLine("| class | normals | anomalies | offline false alarms % | service false alarms % | difference, points | offline recall % | service recall % | replayed false alarms %, floor on / off | training s | stream items/s |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|---|");
        var ruleRows = new List<string>();
        var rankRows = new List<string>();
        foreach (var c in classes)
        {
            var root = Path.Combine(Path.GetTempPath(), $"am-stream-{c}-" + Guid.NewGuid().ToString("N")[..6]);
            var models = Path.Combine(root, "models");
            var clock = Stopwatch.StartNew();
            double trainSeconds = 0;
            var settings = new Dictionary<string, string?>
            {
                ["Models:Path"] = "models",
                ["Mqtt:Broker"] = "",
                ["Mqtt:Embedded:Port"] = AnomalyMonitor.Tests.Support.Ports.Free().ToString(Inv),
                ["Ingest:Mqtt:Enabled"] = "false",
                ["Ingest:Folder:StableFor"] = "00:00:00",
                ["Ingest:Folder:RescanInterval"] = "00:00:00.500",
                ["Web:Urls"] = "http://127.0.0.1:0",
                ["Evidence:MaxCount"] = "100000",
                ["Alerts:MaxPerMinute"] = "1000000",
                ["Judge:Drift:Duration"] = "1.00:00:00", // a whole test split of other classes is not a drift
                ["Retrain:Enabled"] = "false",
                ["Bootstrap:Seed"] = seed.ToString(Inv),
                ["Logging:LogLevel:Default"] = "Warning",
            };
            if (rule is not null) settings["Judge:Rule"] = rule;
            if (coldStart > 0) settings["Bootstrap:Samples"] = coldStart.ToString(Inv);
            foreach (var pair in extra.Select(e => e.Split('=', 2)))
                settings[pair[0]] = pair.Length > 1 ? pair[1] : throw new ArgumentException($"--set {pair[0]}: expected Section:Key=value.");
            // libtorch's thread count is per thread, and a thread that never set one takes the last count set anywhere:
            // after the previous class's service scored small batches on one thread, training here ran on one core.
            set_num_threads(Environment.ProcessorCount);
            if (coldStart == 0)
            {
                ModelBuilder.TrainAndSave(train.Where(l => l == c), new BuildRequest
                {
                    // The detector `train` and the service's cold start use by default.
                    Spec = ModelSpec.Create(Recommended.Architecture, train.Shape, Recommended.Latent(Recommended.Architecture)),
                    Training = new TrainingOptions { Seed = seed, Epochs = Recommended.Epochs, Score = Recommended.Score, Augmentation = Recommended.Augmentation, LatentComponents = Recommended.LatentComponents },
                    NormalClass = c.ToString(Inv),
                }, models, CPU, TimeProvider.System);
                trainSeconds = clock.Elapsed.TotalSeconds;
            }

            var app = ServiceHost.Build(overrides: settings, paths: new PathResolver(root));
            await app.StartAsync();
            var pipeline = app.Services.GetRequiredService<PipelineService>();
            var holder = app.Services.GetRequiredService<ModelHolder>();
            var inbox = Path.Combine(root, "inbox");
            var staging = Path.Combine(root, "staging");
            Directory.CreateDirectory(staging);
            if (coldStart > 0)
            {
                var first = train.Where(l => l == c);
                for (int i = 0; i < coldStart; i++) Drop(staging, inbox, $"train-{i:D5}.png", Mnist.Png(first.Image(i), first.Shape));
                while (!holder.IsJudging || pipeline.Judged < coldStart) await Task.Delay(200);
                trainSeconds = clock.Elapsed.TotalSeconds;
            }
            long before = pipeline.Judged;
            var streamClock = Stopwatch.StartNew();
            for (int i = 0; i < test.Count; i++) Drop(staging, inbox, $"{i:D5}-{test.Labels[i]}.png", Mnist.Png(test.Image(i), test.Shape));
            while (pipeline.Judged - before < test.Count) await Task.Delay(50);
            double rate = test.Count / streamClock.Elapsed.TotalSeconds;
            var normalFiles = Directory.GetFiles(Path.Combine(inbox, "processed", "normal")).Select(Path.GetFileName).Where(f => !f!.StartsWith("train-", StringComparison.Ordinal)).ToList();
            var anomalyFiles = Directory.GetFiles(Path.Combine(inbox, "processed", "anomaly")).Select(Path.GetFileName).Where(f => !f!.StartsWith("train-", StringComparison.Ordinal)).ToList();
            int Label(string? f) => int.Parse(f!.Split('-')[1].Split('.')[0], Inv);
            int normals = test.Labels.Count(l => l == c), anomalies = test.Count - normals;
            double serviceFar = anomalyFiles.Count(f => Label(f) == c) / (double)normals;
            double serviceRecall = anomalyFiles.Count(f => Label(f) != c) / (double)anomalies;

            // evaluate's figures: the same model (the one the service judged with), rule and images, judged by the calibration.
            var modelDir = app.Services.GetRequiredService<AnomalyMonitor.Registry.ModelRegistry>().CurrentPath()!;
            await app.StopAsync();
            await app.DisposeAsync();
            using var model = ModelFiles.Load(modelDir, CPU);
            var policy = rule is null ? model.Threshold : AnomalyMonitor.Core.Thresholds.ThresholdPolicy.Parse(rule);
            var report = Evaluator.Run(model, test, c, policy, batchSize: 256);
            var m = report.Metrics!;
            double offlineFar = (double)m.Confusion.FalsePositive / normals;
            // The service's rolling judge replayed offline over the same scores in the test split's order, with the
            // calibration as a floor (Judge:Floor, the default) and without: what the floor changes, on one model.
            var judge = ModelHolder.Settings(new JudgeOptions());
            var floorOn = Replay.Run(report, model.Manifest.Calibration, judge with { Floor = true });
            var floorOff = Replay.Run(report, model.Manifest.Calibration, judge with { Floor = false });
            Console.WriteLine($"| {c} | {normals} | {anomalies} | {100 * offlineFar:0.00} | {100 * serviceFar:0.00} | {100 * (serviceFar - offlineFar):+0.00;-0.00} | {100 * m.Recall:0.0} | {100 * serviceRecall:0.0} | " +
                $"{100 * floorOn.FalseAlarmRate:0.00} / {100 * floorOff.FalseAlarmRate:0.00} | {trainSeconds:0} | {rate:0} |");
            var isNormal = test.Labels.Select(l => l == c).ToArray();
            // The ranking alone: recall with the cut placed on these test normals at 1% and 0.5% (no rule can know it;
            // it says whether a missed target is the model's ranking or the threshold's calibration).
            double[] normalScores = [.. report.Errors.Where((_, i) => isNormal[i]).Select(e => (double)e)];
            double[] anomalyScores = [.. report.Errors.Where((_, i) => !isNormal[i]).Select(e => (double)e)];
            rankRows.Add($"| {c} | {100 * m.Auroc:0.00} | {100 * SelectBenchmark.RecallAt(normalScores, anomalyScores, 0.01):0.0} | {100 * SelectBenchmark.RecallAt(normalScores, anomalyScores, 0.005):0.0} |");
            foreach (var (text, target) in Calibrated)
            {
                var calibrated = AnomalyMonitor.Core.Thresholds.ThresholdPolicy.Parse(text);
                bool[] flags;
                try
                {
                    flags = report.Errors.Select(e => calibrated.Judge(e, model.Manifest.Calibration).IsAnomaly).ToArray();
                }
                catch (InvalidOperationException e) // a cold start's model holds out fewer than the 1,000 scores conformal needs
                {
                    ruleRows.Add($"| {c} | `{text}` | {100 * target:0.###} | n/a ({e.Message}) | |");
                    continue;
                }
                double far = Enumerable.Range(0, flags.Length).Count(i => flags[i] && isNormal[i]) / (double)normals;
                double recall = Enumerable.Range(0, flags.Length).Count(i => flags[i] && !isNormal[i]) / (double)anomalies;
                ruleRows.Add($"| {c} | `{text}` | {100 * target:0.###} | {100 * far:0.###} | {100 * recall:0.0} |");
            }
            if (normalFiles.Count + anomalyFiles.Count != test.Count) Console.WriteLine($"  (warning: {normalFiles.Count + anomalyFiles.Count} test files moved, expected {test.Count})");
            try { Directory.Delete(root, true); } catch (IOException) { }
        }
        Console.WriteLine();
        Console.WriteLine("Calibrated rules, offline on the same models (target: the false-alarm rate each promises):");
        Console.WriteLine();
        Console.WriteLine("| class | rule | target false alarms % | realised false alarms % | recall % |");
        Console.WriteLine("|---|---|---|---|---|");
        foreach (var row in ruleRows) Console.WriteLine(row);
        Console.WriteLine();
        Console.WriteLine("The ranking, with the cut set on the test normals themselves (a diagnostic, not a rule):");
        Console.WriteLine();
        Console.WriteLine("| class | AUROC % | recall % at 1% false alarms | recall % at 0.5% |");
        Console.WriteLine("|---|---|---|---|");
        foreach (var row in rankRows) Console.WriteLine(row);
        return 0;
    }

    private static void Drop(string staging, string inbox, string name, byte[] png)
    {
        var temp = Path.Combine(staging, name);
        File.WriteAllBytes(temp, png);
        File.Move(temp, Path.Combine(inbox, name));
    }
}
