using System.Security.Cryptography;
using System.Text.Json;
using AnomalyMonitor.Core.Imaging;
using AnomalyMonitor.Core.Models;
using AnomalyMonitor.Core.Runtime;
using AnomalyMonitor.Core.Scoring;
using AnomalyMonitor.Core.Thresholds;
using TorchSharp;
using static TorchSharp.torch;

namespace AnomalyMonitor.Core.Storage;

/// <summary>A model directory's problem, said in one sentence that names the file.</summary>
public sealed class ModelLoadException : Exception
{
    public ModelLoadException(string message) : base(message) { }
    public ModelLoadException(string message, Exception inner) : base(message, inner) { }
    public ModelLoadException() { }
}

/// <summary>A model loaded and checked against its manifest, ready to score.</summary>
public sealed class LoadedModel(nn.Module<Tensor, Tensor> module, ModelManifest manifest, string directory, Device device) : IDisposable
{
    public nn.Module<Tensor, Tensor> Module { get; } = module;
    public ModelManifest Manifest { get; } = manifest;
    public string Directory { get; } = directory;
    public Device Device { get; } = device;
    public ModelSpec Spec { get; } = ModelFiles.SpecOf(manifest);
    public ImageShape Shape => Spec.Shape;
    public ThresholdPolicy Threshold { get; } = ThresholdPolicy.Parse(manifest.Threshold);

    public Detector Detector => Manifest.Detector ?? Detector.Reconstruction;

    public Scorer CreateScorer() => new(Module, Device, Shape, Manifest.ErrorMetric, Detector);

    public void Dispose()
    {
        Module.Dispose();
        Manifest.Detector?.Mixture?.ReleaseScoringTensors();
    }
}

/// <summary>Saves and loads a model directory: weights (model.weights) plus manifest.json, each written atomically.</summary>
public static class ModelFiles
{
    public const string WeightsFile = "model.weights";
    public const string ManifestFile = "manifest.json";

    /// <summary>Writes the weights, then the manifest that vouches for them; the manifest's weights fields are filled in here.</summary>
    public static ModelManifest Save(string directory, nn.Module module, ModelManifest manifest)
    {
        Directory.CreateDirectory(directory);
        var weightsPath = Path.Combine(directory, WeightsFile);
        AtomicFile.Write(weightsPath, temp => module.save(temp));
        var info = new FileInfo(weightsPath);
        var complete = manifest with { Weights = new WeightsInfo(WeightsFile, info.Length, Sha256(weightsPath)) };
        AtomicFile.Write(Path.Combine(directory, ManifestFile), JsonSerializer.SerializeToUtf8Bytes(complete, ModelManifest.Json));
        return complete;
    }

    public static ModelManifest ReadManifest(string directory)
    {
        var path = Path.Combine(directory, ManifestFile);
        if (!Directory.Exists(directory))
            throw new ModelLoadException($"Model directory '{directory}' does not exist.");
        if (!File.Exists(path))
            throw new ModelLoadException($"'{path}' is missing: '{directory}' is not a model directory (train one with `anomaly-monitor train`).");
        try
        {
            var manifest = JsonSerializer.Deserialize<ModelManifest>(File.ReadAllBytes(path), ModelManifest.Json)
                ?? throw new ModelLoadException($"'{path}' is empty.");
            if (manifest.Format > ModelManifest.CurrentFormat)
                throw new ModelLoadException($"'{path}' has format {manifest.Format}; this tool reads up to {ModelManifest.CurrentFormat}. Upgrade anomaly-monitor.");
            var spec = SpecOf(manifest);
            var problems = spec.Problems().ToList();
            if (manifest.Detector is { } detector)
            {
                problems.AddRange(detector.Problems());
                if (detector.Latent is { } latent && (latent.Precision.Length != latent.Dimensions * latent.Dimensions || (spec.Architecture != ModelSpec.ConvPool && latent.Dimensions != spec.Latent)))
                    problems.Add($"its latent density has {latent.Dimensions} dimensions ({latent.Precision.Length} precision values) for a code of {spec.Latent}");
                if (detector.Mixture is { } mixture) problems.AddRange(mixture.Problems(detector.Latent?.Dimensions ?? spec.Latent));
            }
            if (problems.Count > 0)
                throw new ModelLoadException($"'{path}' describes an invalid model: {string.Join("; ", problems)}.");
            return manifest;
        }
        catch (JsonException e)
        {
            throw new ModelLoadException($"'{path}' is not a valid manifest ({e.Message}).", e);
        }
    }

    public static LoadedModel Load(string directory, Device device)
    {
        TorchRuntime.EnsureLoaded();
        var manifest = ReadManifest(directory);
        var weightsPath = Path.Combine(directory, manifest.Weights.File);
        if (!File.Exists(weightsPath))
            throw new ModelLoadException($"'{weightsPath}' is missing; the manifest expects it.");
        long length = new FileInfo(weightsPath).Length;
        if (length != manifest.Weights.Bytes)
            throw new ModelLoadException($"'{weightsPath}' is {length} bytes but the manifest says {manifest.Weights.Bytes}: the file is truncated or was replaced.");
        if (!string.Equals(Sha256(weightsPath), manifest.Weights.Sha256, StringComparison.Ordinal))
            throw new ModelLoadException($"'{weightsPath}' does not match the checksum in its manifest: the file is damaged or belongs to another model.");

        var spec = SpecOf(manifest);
        var module = AutoencoderFactory.Create(spec);
        try
        {
            if (AutoencoderFactory.ParameterCount(module) != manifest.ParameterCount)
                throw new ModelLoadException($"'{directory}': the manifest counts {manifest.ParameterCount} parameters but a {spec.Architecture} model of {spec.Shape} has {AutoencoderFactory.ParameterCount(module)}.");
            module.load(weightsPath, strict: true);
            module.to(device);
            module.eval();
            return new LoadedModel(module, manifest, directory, device);
        }
        catch (Exception e) when (e is not ModelLoadException)
        {
            module.Dispose();
            throw new ModelLoadException($"'{weightsPath}' could not be loaded into a {spec.Architecture} model of {spec.Shape} ({e.Message}).", e);
        }
        catch
        {
            module.Dispose();
            throw;
        }
    }

    public static ModelSpec SpecOf(ModelManifest manifest) =>
        new(manifest.Architecture, new ImageShape(manifest.InputShape.Channels, manifest.InputShape.Height, manifest.InputShape.Width), manifest.Latent);

    public static string Sha256(string path)
    {
        using var stream = File.OpenRead(path);
        return "sha256:" + Convert.ToHexStringLower(SHA256.HashData(stream));
    }
}
