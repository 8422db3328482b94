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

    private static readonly Lazy<string> Trained = new(() =>
    {
        var dir = Path.Combine(Path.GetTempPath(), "am-test-model-" + Guid.NewGuid().ToString("N")[..8]);
        var data = Synthetic.Set(blobs: 600, stripes: 0, noise: 0, size: Size, seed: 101);
        ModelBuilder.TrainAndSave(data, new BuildRequest
        {
            Spec = ModelSpec.Create(ModelSpec.Conv, Shape),
            Training = new TrainingOptions { Epochs = 12, BatchSize = 32, Seed = 5 },
            DataDescription = "synthetic blobs",
        }, dir, torch.CPU, TimeProvider.System);
        return dir;
    });

    public static void CopyTo(string directory)
    {
        Directory.CreateDirectory(directory);
        foreach (var f in Directory.GetFiles(Trained.Value)) File.Copy(f, Path.Combine(directory, Path.GetFileName(f)), true);
    }

    private static readonly Random Rng = new(77);
    private static readonly Lock RngLock = new();

    public static byte[] NormalPng()
    {
        lock (RngLock) return Synthetic.Png(Synthetic.Blob(Rng, Size), Size);
    }

    public static byte[] AnomalyPng(int i)
    {
        lock (RngLock) return Synthetic.Png(i % 2 == 0 ? Synthetic.Stripes(Rng, Size) : Synthetic.Noise(Rng, Size), Size);
    }
}
