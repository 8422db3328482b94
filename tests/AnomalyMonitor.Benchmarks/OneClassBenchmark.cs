using System.Diagnostics;
using System.Globalization;
using AnomalyMonitor.Core.Data;
using AnomalyMonitor.Core.Evaluation;
using AnomalyMonitor.Core.Models;
using AnomalyMonitor.Core.Scoring;
using AnomalyMonitor.Core.Storage;
using AnomalyMonitor.Core.Thresholds;
using AnomalyMonitor.Core.Training;
using static TorchSharp.torch;

namespace AnomalyMonitor.Benchmarks;

/// <summary>Train on one digit's training images, judge all 10,000 test images, with the tool's defaults unless overridden.</summary>
internal static class OneClassBenchmark
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static int Run(string dataDir, string digitsText, string seedsText, string[] overrides)
    {
        var (train, test) = Mnist.Load(dataDir);
        var digits = digitsText.Split(',').Select(int.Parse).ToArray();
        var seeds = seedsText.Split(',').Select(int.Parse).ToArray();
        var (request, label) = Settings(overrides, train.Shape);
        Console.WriteLine($"# one-class {Path.GetFileName(Path.GetFullPath(dataDir))}, {label}; {Mnist.Machine()}");
        Console.WriteLine("digit\tseed\tauroc\tfar\trecall\tthreshold\tfar_train_linear\trecall_train_linear\tepochs\tseconds");
        var rows = new List<(int Digit, int Seed, double Auroc, double Far, double Recall, double FarWorksheet, double RecallWorksheet)>();
        var wall = Stopwatch.StartNew();
        foreach (int digit in digits)
        {
            var normals = train.Where(l => l == digit);
            foreach (int seed in seeds)
            {
                var clock = Stopwatch.StartNew();
                var r = request with { Training = request.Training with { Seed = seed } };
                using var result = Trainer.Train(normals, r.Spec, r.Training, CPU, r.ErrorMetric);
                var report = Evaluate(result, test, digit, r);
                var m = report.Metrics!;
                double far = (double)m.Confusion.FalsePositive / (m.Confusion.FalsePositive + m.Confusion.TrueNegative);
                // The worksheets' rule on the same scores: mean + 3σ of the training images' own errors. It is a rule
                // for reconstruction errors; a latent score has no "training MSE" to take it from.
                double farW = double.NaN, recallW = double.NaN;
                if (r.Training.Score == ScoreKind.Reconstruction)
                {
                    var trainingStats = Trainer.Calibrate(result.Model, normals, result.TrainIndices, "training", CPU, r.ErrorMetric);
                    var worksheetRule = new ThresholdPolicy { K = 3, Space = StatisticSpace.Linear };
                    var flaggedW = report.Errors.Select(e => worksheetRule.Judge(e, trainingStats).IsAnomaly).ToArray();
                    var truth = report.IsAnomaly!;
                    farW = (double)Enumerable.Range(0, truth.Length).Count(i => !truth[i] && flaggedW[i]) / truth.Count(t => !t);
                    recallW = (double)Enumerable.Range(0, truth.Length).Count(i => truth[i] && flaggedW[i]) / truth.Count(t => t);
                }
                rows.Add((digit, seed, m.Auroc, far, m.Recall, farW, recallW));
                Console.WriteLine(string.Join('\t', digit, seed, F(m.Auroc), F(far), F(m.Recall), report.Threshold.ToString("G4", Inv), F(farW), F(recallW), result.History.Count, clock.Elapsed.TotalSeconds.ToString("0", Inv)));
            }
        }

        Console.WriteLine();
        Console.WriteLine($"| digit | AUROC % (mean ± sd, {seeds.Length} seeds) | false alarms %, default rule | recall %, default rule | false alarms %, worksheet rule | recall %, worksheet rule |");
        Console.WriteLine("|---|---|---|---|---|---|");
        foreach (var g in rows.GroupBy(r => r.Digit))
            Console.WriteLine($"| {g.Key} | {Pct(g.Select(x => x.Auroc))} | {Pct(g.Select(x => x.Far))} | {Pct(g.Select(x => x.Recall))} | {Pct(g.Select(x => x.FarWorksheet))} | {Pct(g.Select(x => x.RecallWorksheet))} |");
        string SeedMean(Func<(int Digit, int Seed, double Auroc, double Far, double Recall, double FarWorksheet, double RecallWorksheet), double> f) =>
            Pct(rows.GroupBy(r => r.Seed).Select(g => g.Average(f)));
        Console.WriteLine($"| **mean** | **{SeedMean(x => x.Auroc)}** | {SeedMean(x => x.Far)} | {SeedMean(x => x.Recall)} | {SeedMean(x => x.FarWorksheet)} | {SeedMean(x => x.RecallWorksheet)} |");
        Console.WriteLine($"wall time {wall.Elapsed.TotalMinutes:0.0} min");
        return 0;
    }

    internal static EvaluationReport Evaluate(TrainingResult result, ImageSet test, int digit, BuildRequest request)
    {
        var manifest = ModelBuilder.Describe(result, test, request, TimeProvider.System);
        var loaded = new LoadedModel(result.Model, manifest, "(memory)", CPU);
        return Evaluator.Run(loaded, test, digit, request.Threshold, batchSize: 256);
    }

    private static (BuildRequest Request, string Label) Settings(string[] overrides, AnomalyMonitor.Core.Imaging.ImageShape shape)
    {
        // The service's recommended detector (Recommended, chosen on validation data from the training split) unless overridden.
        var training = new TrainingOptions { Epochs = Recommended.Epochs, Score = Recommended.Score, Augmentation = Recommended.Augmentation, LatentComponents = Recommended.LatentComponents };
        string arch = Recommended.Architecture;
        int? latent = null;
        var error = ErrorMetric.Mse;
        var threshold = ThresholdPolicy.Default;
        foreach (var o in overrides)
        {
            var (k, v) = (o.Split('=', 2)[0], o.Split('=', 2)[1]);
            switch (k)
            {
                case "epochs": training = training with { Epochs = int.Parse(v, Inv) }; break;
                case "batch": training = training with { BatchSize = int.Parse(v, Inv) }; break;
                case "lr": training = training with { LearningRate = double.Parse(v, Inv) }; break;
                case "patience": training = training with { Patience = int.Parse(v, Inv) }; break;
                case "noise": training = training with { Noise = NoiseSpec.Parse(v) }; break;
                case "loss": training = training with { Loss = Enum.Parse<LossKind>(v, true) }; break;
                case "error": error = Enum.Parse<ErrorMetric>(v, true); break;
                case "arch": arch = v; break;
                case "latent": latent = int.Parse(v, Inv); break;
                case "threshold": threshold = ThresholdPolicy.Parse(v); break;
                case "score": training = training with { Score = Enum.Parse<ScoreKind>(v, true) }; break;
                case "augment": training = training with { Augmentation = Augmentation.Parse(v) }; break;
                case "components": training = training with { LatentComponents = int.Parse(v, Inv) }; break;
                default: throw new ArgumentException($"unknown setting {k}");
            }
        }
        var spec = ModelSpec.Create(arch, shape, latent ?? Recommended.Latent(arch));
        var label = overrides.Length == 0 ? "tool defaults" : "defaults with " + string.Join(", ", overrides);
        label += $" (arch {spec.Architecture}, latent {spec.Latent}, loss {training.Loss}, error {error}, epochs {training.Epochs}, patience {training.Patience}, noise {training.Noise}, score {training.Score}, latent components {training.LatentComponents}, augment {training.Augmentation}, threshold {threshold})";
        return (new BuildRequest { Spec = spec, Training = training, ErrorMetric = error, Threshold = threshold }, label);
    }

    private static string F(double v) => v.ToString("0.0000", Inv);

    private static string Pct(IEnumerable<double> values)
    {
        var v = values.ToArray();
        if (v.Any(double.IsNaN)) return "–";
        double mean = v.Average(), sd = Math.Sqrt(v.Select(x => (x - mean) * (x - mean)).Sum() / Math.Max(1, v.Length - 1));
        return $"{(100 * mean).ToString("0.0", Inv)} ± {(100 * sd).ToString("0.0", Inv)}";
    }
}
