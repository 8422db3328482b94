using System.Diagnostics;
using System.Globalization;
using AnomalyMonitor.Core.Models;
using AnomalyMonitor.Core.Scoring;
using AnomalyMonitor.Core.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace AnomalyMonitor.Benchmarks;

/// <summary>
/// Throughput of the tool's trainer and scorer, each beside a plain-TorchSharp baseline run in the same
/// process, so the ratio is robust to how busy this shared machine is. Medians of repeated runs.
/// </summary>
internal static class SpeedBenchmark
{
    public static int Run(string dataDir)
    {
        var inv = CultureInfo.InvariantCulture;
        var (train, _) = Mnist.Load(dataDir);
        var images = train.Subset(Enumerable.Range(0, 6400).ToList());
        var spec = ModelSpec.Create(ModelSpec.Conv, images.Shape);
        Console.WriteLine($"# speed, conv 28x28x1; {Mnist.Machine()}; torch threads {torch.get_num_threads()}");

        // Training: one epoch of 6,400 images at batch 128, tool trainer vs a bare loop, 3 runs each, interleaved.
        var tool = new List<double>();
        var bare = new List<double>();
        for (int run = 0; run < 3; run++)
        {
            // The epoch's own time: the run also calibrates afterwards, which the bare loop does not.
            using (var result = Trainer.Train(images, spec, new TrainingOptions { Epochs = 1, BatchSize = 128, ValidationSplit = 0, Seed = run }, CPU))
                tool.Add(images.Count / result.History[0].Seconds);
            bare.Add(BareTraining(images, spec));
        }
        Console.WriteLine($"training img/s: tool {Median(tool):0} (runs {string.Join(", ", tool.Select(v => v.ToString("0", inv)))}), bare TorchSharp {Median(bare):0}, ratio {Median(tool) / Median(bare):0.00}");

        using var model = AutoencoderFactory.Create(spec);
        model.eval();
        var scorer = new Scorer(model, CPU, images.Shape, ErrorMetric.Mse);
        Console.WriteLine("| batch | tool scorer img/s (median of 5) | bare forward img/s | ratio |");
        Console.WriteLine("|---|---|---|---|");
        foreach (int batch in new[] { 1, 16, 64, 256 })
        {
            int n = batch == 1 ? 1000 : 6400;
            var sub = images.Subset(Enumerable.Range(0, n).ToList());
            var toolRuns = new List<double>();
            var bareRuns = new List<double>();
            scorer.Score(sub, batch); // warm-up
            for (int run = 0; run < 5; run++)
            {
                var c = Stopwatch.StartNew();
                scorer.Score(sub, batch);
                toolRuns.Add(n / c.Elapsed.TotalSeconds);
                bareRuns.Add(BareForward(model, sub, batch));
            }
            Console.WriteLine($"| {batch} | {Median(toolRuns):0} | {Median(bareRuns):0} | {Median(toolRuns) / Median(bareRuns):0.00} |");
        }
        // Two batches at once, one libtorch thread each, against one batch at a time on every thread: on a few
        // cores small convolutions do not split well across threads, and the service can score two batches side by side.
        Console.WriteLine("| batch 32 | one batch at a time, all threads, img/s | two at a time, 1 thread each | ratio |");
        Console.WriteLine("|---|---|---|---|");
        var one = new List<double>();
        var two = new List<double>();
        for (int r = 0; r < 5; r++)
        {
            one.Add(BareForward(model, images, 32));
            two.Add(SideBySide(model, images, 32));
        }
        Console.WriteLine($"| runs {string.Join(", ", one.Select(v => v.ToString("0", inv)))} / {string.Join(", ", two.Select(v => v.ToString("0", inv)))} | {Median(one):0} | {Median(two):0} | {Median(two) / Median(one):0.00} |");
        Console.WriteLine($"peak working set: {Process.GetCurrentProcess().PeakWorkingSet64 / (1024.0 * 1024):0} MiB (MNIST train set loaded as floats: {train.Pixels.Length * 4 / (1024.0 * 1024):0} MiB of it)");
        return 0;
    }

    /// <summary>The same epoch as plain TorchSharp with no staging, shuffling or validation: the floor to compare against.</summary>
    private static double BareTraining(AnomalyMonitor.Core.Data.ImageSet images, ModelSpec spec)
    {
        using var model = AutoencoderFactory.Create(spec);
        using var optimizer = optim.Adam(model.parameters(), 1e-3);
        using var all = tensor(images.Pixels, [images.Count, 1, 28, 28]);
        var c = Stopwatch.StartNew();
        for (int b = 0; b < images.Count; b += 128)
        {
            using var scope = NewDisposeScope();
            var x = all.narrow(0, b, Math.Min(128, images.Count - b));
            var loss = nn.functional.binary_cross_entropy(model.forward(x), x);
            optimizer.zero_grad();
            loss.backward();
            optimizer.step();
        }
        return images.Count / c.Elapsed.TotalSeconds;
    }

    private static double BareForward(nn.Module<Tensor, Tensor> model, AnomalyMonitor.Core.Data.ImageSet images, int batch)
    {
        using var all = tensor(images.Pixels, [images.Count, 1, 28, 28]);
        return Forward.OneAtATime(model, all, batch);
    }

    private static double SideBySide(nn.Module<Tensor, Tensor> model, AnomalyMonitor.Core.Data.ImageSet images, int batch)
    {
        using var all = tensor(images.Pixels, [images.Count, 1, 28, 28]);
        return Forward.SideBySide(model, all, batch);
    }

    private static double Median(List<double> v)
    {
        var s = v.Order().ToArray();
        return s.Length % 2 == 1 ? s[s.Length / 2] : (s[(s.Length / 2) - 1] + s[s.Length / 2]) / 2;
    }
}
