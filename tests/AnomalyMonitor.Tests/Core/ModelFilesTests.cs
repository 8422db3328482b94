using AnomalyMonitor.Core.Data;
using AnomalyMonitor.Core.Models;
using AnomalyMonitor.Core.Runtime;
using AnomalyMonitor.Core.Storage;
using AnomalyMonitor.Core.Training;
using AnomalyMonitor.Tests.Support;
using TorchSharp;

namespace AnomalyMonitor.Tests.Core;

[Collection(TorchCollection.Name)]
public sealed class ModelFilesTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly string _model;
    private readonly ImageSet _data = Synthetic.Set(blobs: 64, stripes: 8, noise: 8, seed: 12);

    public ModelFilesTests()
    {
        TorchRuntime.EnsureLoaded();
        _model = _dir.File("model");
        ModelBuilder.TrainAndSave(_data, new BuildRequest
        {
            Spec = ModelSpec.Create(ModelSpec.Dense, _data.Shape, 8),
            Training = new TrainingOptions { Epochs = 2, BatchSize = 16, Seed = 1 },
            DataDescription = "synthetic",
            NormalClass = "0",
        }, _model, torch.CPU, TimeProvider.System);
    }

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Saved_model_loads_and_scores_the_same()
    {
        var manifest = ModelFiles.ReadManifest(_model);
        Assert.Equal("dense", manifest.Architecture);
        Assert.Equal(_data.Fingerprint(), manifest.Data.Fingerprint);
        Assert.Equal(2, manifest.History.Count);
        Assert.Equal(AutoencoderFactory.ParameterCount(AutoencoderFactory.Create(ModelSpec.Create(ModelSpec.Dense, _data.Shape, 8))), manifest.ParameterCount);
        Assert.False(string.IsNullOrEmpty(manifest.TorchSharpVersion));
        Assert.True(manifest.Calibration.Count > 0);
        Assert.Empty(Directory.GetFiles(_model, "*.tmp"));

        using var a = ModelFiles.Load(_model, torch.CPU);
        using var b = ModelFiles.Load(_model, torch.CPU);
        // Multithreaded CPU kernels may sum in another order: equal to float precision, not bit for bit.
        var sa = a.CreateScorer().Score(_data);
        var sb = b.CreateScorer().Score(_data);
        for (int i = 0; i < sa.Length; i++) Assert.Equal(sa[i], sb[i], 1e-5f);
    }

    [Fact]
    public void Truncated_weights_give_a_clear_error()
    {
        var weights = Path.Combine(_model, ModelFiles.WeightsFile);
        var bytes = File.ReadAllBytes(weights);
        File.WriteAllBytes(weights, bytes[..(bytes.Length / 2)]);
        var e = Assert.Throws<ModelLoadException>(() => ModelFiles.Load(_model, torch.CPU));
        Assert.Contains("truncated", e.Message);
        Assert.Contains(weights, e.Message);
    }

    [Fact]
    public void Damaged_weights_fail_the_checksum()
    {
        var weights = Path.Combine(_model, ModelFiles.WeightsFile);
        var bytes = File.ReadAllBytes(weights);
        bytes[^10] ^= 0xFF;
        File.WriteAllBytes(weights, bytes);
        Assert.Contains("checksum", Assert.Throws<ModelLoadException>(() => ModelFiles.Load(_model, torch.CPU)).Message);
    }

    [Fact]
    public void A_manifest_that_does_not_match_the_weights_is_refused()
    {
        var path = Path.Combine(_model, ModelFiles.ManifestFile);
        File.WriteAllText(path, File.ReadAllText(path).Replace("\"latent\": 8", "\"latent\": 9", StringComparison.Ordinal));
        Assert.Contains("parameters", Assert.Throws<ModelLoadException>(() => ModelFiles.Load(_model, torch.CPU)).Message);
    }

    [Fact]
    public void Missing_or_broken_manifest_is_named()
    {
        var path = Path.Combine(_model, ModelFiles.ManifestFile);
        File.WriteAllText(path, "{ not json");
        Assert.Contains("not a valid manifest", Assert.Throws<ModelLoadException>(() => ModelFiles.Load(_model, torch.CPU)).Message);
        File.Delete(path);
        Assert.Contains("missing", Assert.Throws<ModelLoadException>(() => ModelFiles.Load(_model, torch.CPU)).Message);
        Assert.Contains("does not exist", Assert.Throws<ModelLoadException>(() => ModelFiles.Load(_dir.File("nowhere"), torch.CPU)).Message);
    }
}
