using AnomalyMonitor.Core.Models;
using AnomalyMonitor.Core.Scoring;
using AnomalyMonitor.Core.Training;
using AnomalyMonitor.Tests.Support;
using static TorchSharp.torch;

namespace AnomalyMonitor.Benchmarks;

/// <summary>
/// Writes the small models the test suite loads instead of training them in every run, so that every
/// run judges with the same weights. Run it again only when the model format changes:
/// dotnet run --project tests/AnomalyMonitor.Benchmarks -c Release -- test-assets
/// </summary>
internal static class TestAssets
{
    public static int Run(string outDirectory)
    {
        // One thread and fixed seeds: the same weights on every run of this command on this machine.
        set_num_threads(1);
        Write(outDirectory, "blob-model", blobs: 600, epochs: 300, LossKind.Bce);
        Write(outDirectory, "weak-model", blobs: 40, epochs: 1, LossKind.Bce);
        Write(outDirectory, "mse-model", blobs: 40, epochs: 1, LossKind.Mse);
        return 0;
    }

    private static void Write(string root, string name, int blobs, int epochs, LossKind loss)
    {
        var dir = Path.Combine(root, name);
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        var data = Synthetic.Set(blobs: blobs, stripes: 0, noise: 0, size: TestModel.Size, seed: 101);
        var manifest = ModelBuilder.TrainAndSave(data, new BuildRequest
        {
            Spec = ModelSpec.Create(ModelSpec.Dense, TestModel.Shape, latent: 16),
            Training = new TrainingOptions { Epochs = epochs, BatchSize = 32, Seed = 5, Loss = loss, Patience = 0 },
            // A model trained by hand, as `anomaly-monitor train` writes it: no registry version (v0 when standalone).
            // TestModel.InstallAsV1 writes version 1 into the copy it installs.
            DataDescription = "synthetic 16x16 blobs (tests/AnomalyMonitor.Benchmarks/TestAssets.cs)",
        }, dir, CPU, TimeProvider.System);
        using var model = AnomalyMonitor.Core.Storage.ModelFiles.Load(dir, CPU);
        var probe = Synthetic.Set(blobs: 200, stripes: 50, noise: 50, size: TestModel.Size, seed: 7);
        var z = model.CreateScorer().Score(probe).Select(e => (Math.Log(e) - manifest.Calibration.LogMean) / manifest.Calibration.LogStd).ToArray();
        Console.WriteLine($"{name}: z of fresh blobs {z[..200].Min():F1}..{z[..200].Max():F1} (share below 1: {z[..200].Count(v => v < 1) / 200.0:P0}), stripes {z[200..250].Min():F1}..{z[200..250].Max():F1}, noise {z[250..].Min():F1}..{z[250..].Max():F1}");
        Console.WriteLine($"{name}: {manifest.ParameterCount} parameters, {manifest.Weights.Bytes} bytes, calibration log-mean {manifest.Calibration.LogMean:F3} log-σ {manifest.Calibration.LogStd:F3}");
    }
}
