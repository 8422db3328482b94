using AnomalyMonitor.Core.Imaging;
using AnomalyMonitor.Core.Models;
using AnomalyMonitor.Core.Training;
using TorchSharp;

namespace AnomalyMonitor.Tests.Support;

/// <summary>
/// One small conv model trained for real on generated 16x16 blobs, shared by the service tests (training
/// it once keeps the suite quick). Seeded, so its verdicts on the seeded test images are stable.
/// </summary>
public static class TestModel
{
    public const int Size = 16;
    public static readonly ImageShape Shape = new(1, Size, Size);

    private static readonly Lazy<string> Trained = new(() => Train(blobs: 600, epochs: 12, version: 1));

    /// <summary>A barely trained model (one epoch on 40 images): any reasonable retraining beats it.</summary>
    private static readonly Lazy<string> Weak = new(() => Train(blobs: 40, epochs: 1, version: 1));
    private static readonly Lazy<string> Mse = new(() => Train(blobs: 40, epochs: 1, version: 1, AnomalyMonitor.Core.Scoring.LossKind.Mse));

    private static string Train(int blobs, int epochs, int? version, AnomalyMonitor.Core.Scoring.LossKind loss = AnomalyMonitor.Core.Scoring.LossKind.Bce)
    {
        var dir = Path.Combine(Path.GetTempPath(), "am-test-model-" + Guid.NewGuid().ToString("N")[..8]);
        var data = Synthetic.Set(blobs: blobs, stripes: 0, noise: 0, size: Size, seed: 101);
        ModelBuilder.TrainAndSave(data, new BuildRequest
        {
            Spec = ModelSpec.Create(ModelSpec.Conv, Shape),
            Training = new TrainingOptions { Epochs = epochs, BatchSize = 32, Seed = 5, Loss = loss },
            DataDescription = "synthetic blobs",
            Version = version,
        }, dir, torch.CPU, TimeProvider.System);
        return dir;
    }

    public static void CopyTo(string directory) => Copy(Trained.Value, directory);

    /// <summary>Installs the model as version v1 of a registry under <paramref name="modelsDirectory"/>, and makes it current.</summary>
    public static void InstallAsV1(string modelsDirectory, bool weak = false, AnomalyMonitor.Core.Scoring.LossKind loss = AnomalyMonitor.Core.Scoring.LossKind.Bce)
    {
        Copy(loss == AnomalyMonitor.Core.Scoring.LossKind.Mse ? Mse.Value : weak ? Weak.Value : Trained.Value, Path.Combine(modelsDirectory, "v1"));
        File.WriteAllText(Path.Combine(modelsDirectory, "current"), "v1\n");
    }

    private static void Copy(string from, string directory)
    {
        Directory.CreateDirectory(directory);
        foreach (var f in Directory.GetFiles(from)) File.Copy(f, Path.Combine(directory, Path.GetFileName(f)), true);
    }

    /// <summary>Generated normal images as store samples (what the pipeline stores for accepted items).</summary>
    public static List<AnomalyMonitor.Samples.NewSample> Samples(int count, int seed, string prefix = "s", DateTimeOffset? receivedAt = null)
    {
        var rng = new Random(seed);
        var at = receivedAt ?? DateTimeOffset.UnixEpoch;
        return [.. Enumerable.Range(0, count).Select(i => new AnomalyMonitor.Samples.NewSample($"{prefix}{i}", "test", at, 0.01, 1, Synthetic.Blob(rng, Size)))];
    }

    private static readonly Random Rng = new(77);
    private static readonly Lock RngLock = new();

    // The service tests check plumbing (where a file goes, what a counter says), so their normal images
    // must be normal without exception: they are the model's own training blobs, in turn. How well the
    // model generalises to unseen blobs is the core tests' business.
    private static readonly Lazy<float[][]> TrainingBlobs = new(() =>
    {
        var rng = new Random(101); // as Synthetic.Set draws them for the trained model
        return [.. Enumerable.Range(0, 600).Select(_ => Synthetic.Blob(rng, Size))];
    });
    private static int _nextBlob;

    public static byte[] NormalPng() =>
        Synthetic.Png(TrainingBlobs.Value[(Interlocked.Increment(ref _nextBlob) & int.MaxValue) % 600], Size);

    public static byte[] AnomalyPng(int i)
    {
        lock (RngLock) return Synthetic.Png(i % 2 == 0 ? Synthetic.Stripes(Rng, Size) : Synthetic.Noise(Rng, Size), Size);
    }
}
