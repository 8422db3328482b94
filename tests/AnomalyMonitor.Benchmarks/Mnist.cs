using AnomalyMonitor.Core.Data;

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
}
