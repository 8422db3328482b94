using System.Diagnostics;
using AnomalyMonitor.Core.Imaging;
using AnomalyMonitor.Core.Models;
using AnomalyMonitor.Core.Runtime;
using AnomalyMonitor.Core.Scoring;
using TorchSharp;
using static TorchSharp.torch;

namespace AnomalyMonitor.Benchmarks;

/// <summary>
/// The first forward pass at each batch size against the later ones, on one libtorch thread as a scoring
/// lane runs it: oneDNN builds its kernels for each input shape the first time it sees it, and a service
/// under a light load meets a new batch size now and then for hours. Then the same on a second thread, and
/// a new model instance's first pass: whether a lane or a promotion would need a warm-up of its own.
/// </summary>
internal static class ShapesBenchmark
{
    public static int Run(int maxBatch, int threads)
    {
        if (maxBatch < 1 || threads < 1) throw new ArgumentException($"--max-batch and --threads must be 1 or more, were {maxBatch} and {threads}.");
        Console.WriteLine($"# first forward at each batch size vs the next ones, conv model (untrained), 28x28, {threads} libtorch thread(s); {Mnist.Machine()}");
        var shape = new ImageShape(1, 28, 28);
        torch.set_num_threads(threads);
        using var model = AutoencoderFactory.Create(ModelSpec.Create(ModelSpec.Conv, shape));
        model.eval();
        var scorer = new Scorer(model, CPU, shape, ErrorMetric.Mse);
        var rng = new Random(1);
        var pixels = new float[maxBatch * shape.PixelCount];
        for (int i = 0; i < pixels.Length; i++) pixels[i] = PixelBytes.Levels[rng.Next(256)];
        using var x = tensor(pixels, [maxBatch, 1, 28, 28]);
        var output = new ScoreOutput(maxBatch, shape, detailed: false);
        double Time(int n)
        {
            var clock = Stopwatch.StartNew();
            using var s = NewDisposeScope();
            using var g = no_grad();
            scorer.ScoreTensor(x.narrow(0, 0, n), n, output, 0, reconstruct: false);
            return clock.Elapsed.TotalMilliseconds;
        }
        // The pipeline benchmark's warm-up runs flat out, so a lane has seen the full batch before the light loads.
        double warm = Time(maxBatch);
        Console.WriteLine($"warm-up: first forward at batch {maxBatch} took {warm:0.0} ms");
        void Table(string title)
        {
            Console.WriteLine(title);
            Console.WriteLine("| batch | first ms | second ms | median of 5 later ms |");
            Console.WriteLine("|---|---|---|---|");
            double firstSum = 0, laterSum = 0;
            for (int n = 1; n <= maxBatch; n++)
            {
                double first = Time(n), second = Time(n);
                var later = Enumerable.Range(0, 5).Select(_ => Time(n)).Order().ToList();
                firstSum += first; laterSum += later[2];
                Console.WriteLine($"| {n} | {first:0.00} | {second:0.00} | {later[2]:0.00} |");
            }
            Console.WriteLine($"sum over batch sizes 1..{maxBatch}: first {firstSum:0.0} ms, later {laterSum:0.0} ms");
        }
        Table("on the thread that warmed up:");
        // A second thread after the first has met every size: are the costs per process (oneDNN's primitive
        // cache) or per thread? The answer says whether a model can be warmed up off the scoring lanes.
        var other = new Thread(() =>
        {
            torch.set_num_threads(threads);
            Table("then on another thread, same thread count:");
        });
        other.Start();
        other.Join();
        // A promoted model is a new instance of a shape the process knows: does its first pass pay again?
        using (var next = AutoencoderFactory.Create(ModelSpec.Create(ModelSpec.Conv, shape)))
        {
            next.eval();
            scorer = new Scorer(next, CPU, shape, ErrorMetric.Mse);
            double a = Time(maxBatch), b = Time(maxBatch), c = Time(4), d = Time(4);
            Console.WriteLine($"a new model instance: batch {maxBatch} first {a:0.00} ms, second {b:0.00} ms; batch 4 first {c:0.00} ms, second {d:0.00} ms");
        }
        return 0;
    }
}
