using AnomalyMonitor.Core.Data;
using AnomalyMonitor.Core.Imaging;
using SkiaSharp;

namespace AnomalyMonitor.Benchmarks;

internal static class Mnist
{
    public static (ImageSet Train, ImageSet Test) Load(string directory)
    {
        if (!Directory.Exists(directory))
            throw new DirectoryNotFoundException($"MNIST not found at '{directory}'; pass --data (the benchmarks need ../shared/data/mnist or a copy).");
        var train = DatasetLoader.Load(directory, new DatasetOptions { Split = DatasetSplit.Train }).Images;
        var test = DatasetLoader.Load(directory, new DatasetOptions { Split = DatasetSplit.Test }).Images;
        return (train, test);
    }

    public static string Machine() =>
        $"{Environment.ProcessorCount} cores, {Environment.OSVersion}, .NET {Environment.Version}, TorchSharp {AnomalyMonitor.Core.Runtime.TorchRuntime.TorchSharpVersion}";

    /// <summary>
    /// The benchmarks' PNG payloads, RGBA at Skia's default compression, byte for byte as every earlier run
    /// sent them (the service's own encoder now writes gray images as gray PNG): the decode cost stays comparable.
    /// </summary>
    public static byte[] Png(ReadOnlySpan<float> image, ImageShape shape)
    {
        using var bitmap = ImageEncoder.ToBitmap(image, shape);
        using var snapshot = SKImage.FromBitmap(bitmap);
        using var data = snapshot.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }
}
