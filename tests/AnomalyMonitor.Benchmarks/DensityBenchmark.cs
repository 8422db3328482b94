using System.Diagnostics;
using AnomalyMonitor.Core.Scoring;
using AnomalyMonitor.Core.Training;
using TorchSharp;

namespace AnomalyMonitor.Benchmarks;

/// <summary>
/// What fitting the latent density costs after training: one mixture fit on the training codes (the `train`
/// default) against three fits pooled on the training and held-out codes with 5-fold cross-fitted calibration
/// (the cold start's default), at a cold start's size and a full MNIST class's. Codes are synthetic, 64 wide.
/// </summary>
internal static class DensityBenchmark
{
    public static int Run(int runs)
    {
        Console.WriteLine($"# density fit, 64-wide codes, 5 components asked, median of {runs}; {Mnist.Machine()}");
        Console.WriteLine("| training + held-out codes | one fit, training codes (s) | three fits, all codes, cross-fitted (s) | ratio |");
        Console.WriteLine("|---|---|---|---|");
        const int d = 64;
        foreach (var (train, held) in new[] { (750, 250), (5_000, 1_000) })
        {
            var trainCodes = Codes(train, d, seed: 1);
            var heldCodes = Codes(held, d, seed: 2);
            var options = new TrainingOptions { Score = ScoreKind.Latent, LatentComponents = 5, Seed = 1 };
            double one = Median(runs, () => LatentFit.Fit(trainCodes, d, options));
            double pooled = Median(runs, () => LatentFit.CrossFit(trainCodes, heldCodes, d, options with { LatentFits = 3, LatentHeldOut = true }));
            Console.WriteLine($"| {train:N0} + {held:N0} | {one:0.00} | {pooled:0.00} | {pooled / one:0.0} |");
        }
        // The scoring side: a batch of 32 codes through the pooled mixture against one fit's, as the scorer calls it.
        var fitted = Codes(1_000, d, seed: 3);
        var single = LatentFit.Fit(fitted, d, new TrainingOptions { Score = ScoreKind.Latent, LatentComponents = 5, Seed = 1 });
        var pooled3 = LatentFit.Fit(fitted, d, new TrainingOptions { Score = ScoreKind.Latent, LatentComponents = 5, Seed = 1, LatentFits = 3 });
        using var batch = torch.tensor(Codes(32, d, seed: 4), [32, d]);
        double Micro(Detector detector) => 1e6 * Median(runs, () =>
        {
            for (int i = 0; i < 2_000; i++)
            {
                using var scope = torch.NewDisposeScope();
                detector.LatentScore(batch, torch.CPU).data<float>()[0].ToString();
            }
        }) / 2_000;
        double five = Micro(single), fifteen = Micro(pooled3);
        Console.WriteLine();
        Console.WriteLine($"latent score of a batch of 32 codes: {single.Mixture!.Components} components {five:0} µs, {pooled3.Mixture!.Components} components {fifteen:0} µs (+{fifteen - five:0} µs a batch)");
        return 0;
    }

    private static double Median(int runs, Action fit)
    {
        var seconds = new List<double>();
        for (int r = 0; r < runs; r++)
        {
            var clock = Stopwatch.StartNew();
            fit();
            seconds.Add(clock.Elapsed.TotalSeconds);
        }
        return seconds.Order().ElementAt(runs / 2);
    }

    /// <summary>Anisotropic codes in five styles, as an encoder's codes of one class are.</summary>
    private static float[] Codes(int n, int d, int seed)
    {
        var rng = new Random(seed);
        var codes = new float[n * d];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < d; j++)
                codes[(i * d) + j] = (float)((j < 5 && i % 5 == j ? 3 : 0) + ((0.2 + (j / 8.0)) * Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble())));
        return codes;
    }
}
