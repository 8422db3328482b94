using System.Diagnostics;
using AnomalyMonitor.Core.Imaging;
using AnomalyMonitor.Core.Models;
using AnomalyMonitor.Core.Runtime;
using AnomalyMonitor.Core.Scoring;
using TorchSharp;
using static TorchSharp.torch;

namespace AnomalyMonitor.Benchmarks;

/// <summary>
/// What the scorer adds to a bare forward pass, on one libtorch thread at batch 32 as a scoring lane runs it:
/// the score alone, and the score with the reconstructions and error maps copied out for evidence; and what
/// copying a batch's reconstruction to .NET costs through TensorAccessor.CopyTo against one block copy.
/// Repetitions alternate the variants, so drift on a shared machine hits them alike.
/// </summary>
internal static class ScorePartsBenchmark
{
    public static int Run(int runs)
    {
        Console.WriteLine($"# scorer parts, conv model (untrained), 28x28, batch 32, 1 libtorch thread, median of {runs}; {Mnist.Machine()}");
        var shape = new ImageShape(1, 28, 28);
        torch.set_num_threads(1);
        using var model = AutoencoderFactory.Create(ModelSpec.Create(ModelSpec.Conv, shape));
        model.eval();
        var scorer = new Scorer(model, CPU, shape, ErrorMetric.Mse);
        var rng = new Random(1);
        var pixels = new float[32 * shape.PixelCount];
        for (int i = 0; i < pixels.Length; i++) pixels[i] = PixelBytes.Levels[rng.Next(256)];
        using var x = tensor(pixels, [32, 1, 28, 28]);
        using var reconstruction = model.forward(x);
        var summary = new ScoreOutput(32, shape, detailed: false);
        var detailed = new ScoreOutput(32, shape, detailed: true);
        var host = new float[pixels.Length];
        var parts = new (string Name, Action Step, List<double> Us)[]
        {
            ("bare forward", () => { using var s = NewDisposeScope(); using var g = no_grad(); _ = model.forward(x).sum().item<float>(); }, []),
            ("scorer, score only", () => { using var s = NewDisposeScope(); using var g = no_grad(); scorer.ScoreTensor(x, 32, summary, 0, reconstruct: false); }, []),
            ("scorer, score and evidence", () => { using var s = NewDisposeScope(); using var g = no_grad(); scorer.ScoreTensor(x, 32, detailed, 0, reconstruct: true); }, []),
            ("reconstruction to .NET, TensorAccessor.CopyTo", () => reconstruction.data<float>().CopyTo(host, 0), []),
            ("reconstruction to .NET, HostCopy (one block)", () => HostCopy.To(reconstruction, host, 0), []),
        };
        foreach (var part in parts) Time(part.Step); // warm-up: oneDNN builds its kernels on first use
        for (int run = 0; run < runs; run++)
            foreach (var part in parts) part.Us.Add(Time(part.Step));
        Console.WriteLine("| step | µs an image (median) | runs |");
        Console.WriteLine("|---|---|---|");
        foreach (var (name, _, us) in parts)
            Console.WriteLine($"| {name} | {Median(us):0.00} | {string.Join(", ", us.Select(u => u.ToString("0.00")))} |");
        return 0;
    }

    private static double Time(Action step)
    {
        const int Batches = 300;
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < Batches; i++) step();
        return clock.Elapsed.TotalMicroseconds / Batches / 32;
    }

    private static double Median(List<double> values) => values.Order().ElementAt(values.Count / 2);
}
