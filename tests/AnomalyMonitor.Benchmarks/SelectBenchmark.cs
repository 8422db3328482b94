using System.Diagnostics;
using System.Globalization;
using AnomalyMonitor.Core.Data;
using AnomalyMonitor.Core.Evaluation;
using AnomalyMonitor.Core.Models;
using AnomalyMonitor.Core.Scoring;
using AnomalyMonitor.Core.Thresholds;
using AnomalyMonitor.Core.Training;
using static TorchSharp.torch;

namespace AnomalyMonitor.Benchmarks;

/// <summary>
/// How the default detector was chosen, on the training split only: for each class, 10% of its training
/// images are held out as validation normals and 2,000 training images of the other classes are the
/// validation anomalies; the model trains on the remaining 90% of the class with the product's own
/// Trainer. Each run reports the validation AUROC of the three scores one training gives (reconstruction,
/// latent, combined), and of an ensemble of them when members &gt; 1; the scoring-only experiments of
/// <see cref="SelectExperiments"/> on the same model when asked for. The test split is never read here.
/// </summary>
internal static class SelectBenchmark
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static int Run(string dataDir, string classesText, string[] settings)
    {
        var cfg = settings.Select(s => s.Split('=', 2)).ToDictionary(p => p[0], p => p.Length > 1 ? p[1] : "");
        string Get(string k, string d) => cfg.TryGetValue(k, out var v) ? v : d;
        var arch = Get("arch", ModelSpec.Conv);
        int latentSize = int.Parse(Get("latent", "32"), Inv);
        int members = int.Parse(Get("members", "1"), Inv);
        int seed = int.Parse(Get("seed", "1"), Inv);
        var options = new TrainingOptions
        {
            Epochs = int.Parse(Get("epochs", "40"), Inv),
            MinSteps = int.Parse(Get("minsteps", "0"), Inv),
            Patience = int.Parse(Get("patience", "0"), Inv),
            BatchSize = int.Parse(Get("batch", "128"), Inv),
            LearningRate = double.Parse(Get("lr", "0.001"), Inv),
            Loss = Enum.Parse<LossKind>(Get("loss", "bce"), ignoreCase: true),
            Augmentation = Augmentation.Parse(Get("augment", "none")),
            LatentShrinkage = double.Parse(Get("shrinkage", "0.01"), Inv),
            LatentComponents = int.Parse(Get("components", "1"), Inv),
            LatentFits = int.Parse(Get("fits", "1"), Inv),
            LatentHeldOut = Get("heldout", "0") == "1",
            Score = ScoreKind.Combined, // fits the latent Gaussian and the normalisation: all three scores from one training
        };
        set_num_threads(int.Parse(Get("threads", "2"), Inv));

        var train = DatasetLoader.Load(dataDir, new DatasetOptions { Split = DatasetSplit.Train }).Images;
        Console.WriteLine($"# select {Path.GetFileName(Path.GetFullPath(dataDir))} {string.Join(' ', settings)}; {Mnist.Machine()}");
        var all = new SortedDictionary<string, List<double>>(StringComparer.Ordinal);
        var seconds = new List<double>();
        foreach (var c in classesText.Split(',').Select(int.Parse))
        {
            var (fit, valNormal, valAnomalies) = Protocol(train, c);
            // limit=N: a cold start's sample (the service learns its first model from N images).
            if (cfg.TryGetValue("limit", out var limit)) fit = fit.Subset([.. Enumerable.Range(0, Math.Min(fit.Count, int.Parse(limit, Inv)))]);
            var clock = Stopwatch.StartNew();
            var memberScores = new List<Dictionary<string, (double[] N, double[] A)>>();
            for (int m = 0; m < members; m++)
            {
                using var result = Trainer.Train(fit, ModelSpec.Create(arch, fit.Shape, latentSize), options with { Seed = seed + (1000 * m) }, CPU);
                var scores1 = Scores(result, valNormal, valAnomalies);
                SelectExperiments.Run(scores1, result, fit, valNormal, valAnomalies, Get, options.Augmentation);
                memberScores.Add(scores1);
            }
            seconds.Add(clock.Elapsed.TotalSeconds);
            var scores = memberScores[0];
            if (members > 1)
                foreach (var kind in new[] { "latent", "combined" })
                    scores[$"{kind}x{members}"] = (Average(memberScores.Select(s => s[kind].N)), Average(memberScores.Select(s => s[kind].A)));
            Console.Write($"class {c}: {clock.Elapsed.TotalSeconds:0}s");
            foreach (var (name, (n, a)) in scores)
            {
                double auc = BinaryMetrics.AreaUnderRoc([.. n, .. a], [.. n.Select(_ => false), .. a.Select(_ => true)]);
                Console.Write($"  {name} {100 * auc:0.00}");
                // roc=1: recall at 1% false alarms on the validation normals (the cold start's operating point), and
                // at 0.5%, where a threshold from 250 calibration scores must aim to stay under 1% every time.
                if (Get("roc", "") == "1") Console.Write($" (recall@1% {100 * RecallAt(n, a, 0.01):0.0}, @0.5% {100 * RecallAt(n, a, 0.005):0.0})");
                if (!all.TryGetValue(name, out var list)) all[name] = list = [];
                list.Add(auc);
            }
            Console.WriteLine();
        }
        Console.WriteLine($"mean ({seconds.Average():0} s a class): " + string.Join("  ", all.Select(kv => $"{kv.Key} {100 * kv.Value.Average():0.00}")));
        return 0;
    }

    /// <summary>The validation protocol: a fixed, seeded split of the training split alone.</summary>
    internal static (ImageSet Fit, ImageSet ValNormal, ImageSet ValAnomalies) Protocol(ImageSet train, int normalClass)
    {
        var rng = new Random(1000 + normalClass);
        var normal = Enumerable.Range(0, train.Count).Where(i => train.Labels[i] == normalClass).ToArray();
        rng.Shuffle(normal);
        int held = normal.Length / 10;
        var others = Enumerable.Range(0, train.Count).Where(i => train.Labels[i] != normalClass).ToArray();
        rng.Shuffle(others);
        return (train.Subset(normal[held..]), train.Subset(normal[..held]), train.Subset(others[..2000]));
    }

    /// <summary>Reconstruction, latent and combined scores from one training; the latter two in log, standardised on the model's own held-out images.</summary>
    private static Dictionary<string, (double[] N, double[] A)> Scores(TrainingResult result, ImageSet normals, ImageSet anomalies)
    {
        var detector = result.Detector;
        var scorer = new Scorer(result.Model, CPU, normals.Shape, ErrorMetric.Mse, detector);
        var n = scorer.Score(normals, 0, normals.Count, detailed: true, 256);
        var a = scorer.Score(anomalies, 0, anomalies.Count, detailed: true, 256);
        var norm = detector.Normalization!;
        double[] Z(float[] v, double mean, double std) => [.. v.Select(x => (Statistics.SafeLog(x) - mean) / std)];
        return new Dictionary<string, (double[] N, double[] A)>
        {
            ["reconstruction"] = (Z(n.ReconstructionErrors, norm.ReconstructionLogMean, norm.ReconstructionLogStd), Z(a.ReconstructionErrors, norm.ReconstructionLogMean, norm.ReconstructionLogStd)),
            ["latent"] = (Z(n.LatentScores, norm.LatentLogMean, norm.LatentLogStd), Z(a.LatentScores, norm.LatentLogMean, norm.LatentLogStd)),
            ["combined"] = ([.. n.Errors.Select(x => Statistics.SafeLog(x))], [.. a.Errors.Select(x => Statistics.SafeLog(x))]),
        };
    }

    /// <summary>The share of anomalies above the normals' (1 − rate) quantile.</summary>
    internal static double RecallAt(double[] normals, double[] anomalies, double rate)
    {
        var sorted = normals.Order().ToArray();
        double cut = sorted[Math.Clamp((int)Math.Ceiling((1 - rate) * sorted.Length) - 1, 0, sorted.Length - 1)];
        return anomalies.Count(x => x > cut) / (double)anomalies.Length;
    }

    private static double[] Average(IEnumerable<double[]> members)
    {
        var list = members.ToList();
        return [.. Enumerable.Range(0, list[0].Length).Select(i => list.Average(m => m[i]))];
    }
}
