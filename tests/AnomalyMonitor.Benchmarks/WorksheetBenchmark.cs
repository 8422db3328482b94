using System.Diagnostics;
using System.Globalization;
using AnomalyMonitor.Core.Models;
using AnomalyMonitor.Core.Scoring;
using AnomalyMonitor.Core.Thresholds;
using AnomalyMonitor.Core.Training;
using static TorchSharp.torch;

namespace AnomalyMonitor.Benchmarks;

/// <summary>Worksheet 000 as written: its threshold is mean + 3σ of the MSE on the training images themselves.</summary>
internal static class WorksheetBenchmark
{
    public static int Run(string dataDir)
    {
        var inv = CultureInfo.InvariantCulture;
        var (train, test) = Mnist.Load(dataDir);
        var ones = train.Where(l => l == 1);
        var options = new TrainingOptions { Epochs = 20, BatchSize = 128, LearningRate = 1e-3, Loss = LossKind.Bce, ValidationSplit = 0.1, Patience = 0, Seed = 1 };
        var request = new BuildRequest { Spec = ModelSpec.Create(ModelSpec.Conv, train.Shape), Training = options, ErrorMetric = ErrorMetric.Mse };
        var clock = Stopwatch.StartNew();
        using var result = Trainer.Train(ones, request.Spec, options, CPU, ErrorMetric.Mse);
        double seconds = clock.Elapsed.TotalSeconds;

        var trainingCalibration = Trainer.Calibrate(result.Model, ones, result.TrainIndices, "training", CPU, ErrorMetric.Mse);
        Console.WriteLine($"# worksheet 000 replication; {Mnist.Machine()}; training {seconds:0} s for {options.Epochs} epochs on {result.TrainIndices.Length} images");
        Console.WriteLine("| threshold rule | threshold | flagged / 10,000 | precision | recall | false alarms on test 1s | AUROC |");
        Console.WriteLine("|---|---|---|---|---|---|---|");
        foreach (var (name, policy, stats) in new[]
        {
            ("worksheet: mean + 3σ of training MSE", new ThresholdPolicy { K = 3, Space = StatisticSpace.Linear }, trainingCalibration),
            ("mean + 3σ of validation MSE", new ThresholdPolicy { K = 3, Space = StatisticSpace.Linear }, result.Calibration!),
            ("default: mean + 3σ of validation log-MSE", ThresholdPolicy.Default, result.Calibration!),
        })
        {
            var scores = new Scorer(result.Model, CPU, test.Shape, ErrorMetric.Mse).Score(test, 256);
            var flagged = scores.Select(s => policy.Judge(s, stats).IsAnomaly).ToArray();
            var truth = test.Labels.Select(l => l != 1).ToArray();
            var m = AnomalyMonitor.Core.Evaluation.BinaryMetrics.Compute(scores.Select(s => (double)s).ToArray(), truth, flagged);
            double far = (double)m.Confusion.FalsePositive / (m.Confusion.FalsePositive + m.Confusion.TrueNegative);
            Console.WriteLine($"| {name} | {policy.UpperThreshold(stats).ToString("0.00000", inv)} | {flagged.Count(f => f):N0} | {m.Precision.ToString("0.0000", inv)} | {m.Recall.ToString("0.0000", inv)} | {(100 * far).ToString("0.00", inv)}% ({m.Confusion.FalsePositive} of {m.Confusion.FalsePositive + m.Confusion.TrueNegative}) | {m.Auroc.ToString("0.0000", inv)} |");
        }
        Console.WriteLine($"wall time (training): {seconds:0.0} s");
        return 0;
    }
}
