using AnomalyMonitor.State;
using AnomalyMonitor.Core.Storage;
using AnomalyMonitor.Registry;
using AnomalyMonitor.Tests.Support;
using Microsoft.Extensions.Options;
using TorchSharp;

namespace AnomalyMonitor.Tests.Retraining;

/// <summary>The registry's promise: whatever moment a promotion is interrupted at, "current" names a loadable model.</summary>
public sealed class RegistryTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private string Models => Path.Combine(_dir.Path, "models");

    private ModelRegistry Registry(int keep = 5) =>
        new(Options.Create(new ModelsOptions { Path = "models", KeepVersions = keep }), new PathResolver(_dir.Path));

    /// <summary>Saves v1's model again as version <paramref name="version"/>, as a retraining run would save a candidate.</summary>
    private static void SaveCopy(ModelRegistry registry, int version)
    {
        using var model = registry.Load(1, torch.CPU);
        registry.Save(version, model.Module, model.Manifest with { Version = version, ParentVersion = 1 });
    }

    [Theory]
    [InlineData("saved", 1)]     // crash after the new version is written, before "current" moves
    [InlineData("switched", 2)]  // crash right after "current" moved
    public void A_promotion_interrupted_between_steps_leaves_a_loadable_current(string crashAfter, int expectedCurrent)
    {
        TestModel.InstallAsV1(Models);
        var registry = Registry();
        registry.AfterStep = step =>
        {
            if (step == crashAfter) throw new IOException($"simulated crash after '{step}'");
        };
        Assert.Throws<IOException>(() =>
        {
            SaveCopy(registry, 2);
            registry.SetCurrent(2);
        });

        var restarted = Registry(); // a new process
        Assert.Equal(expectedCurrent, restarted.CurrentVersion());
        using var loaded = ModelFiles.Load(restarted.CurrentPath()!, torch.CPU);
        Assert.Equal(expectedCurrent == 1 ? 1 : 2, loaded.Manifest.Version);
    }

    [Fact]
    public void A_save_killed_halfway_leaves_only_a_partial_folder_that_is_ignored_and_cleaned_up()
    {
        TestModel.InstallAsV1(Models);
        // What a kill during ModelFiles.Save leaves: weights without a manifest, under the temporary name.
        var partial = Path.Combine(Models, ".v2.partial");
        Directory.CreateDirectory(partial);
        File.Copy(Path.Combine(Models, "v1", ModelFiles.WeightsFile), Path.Combine(partial, ModelFiles.WeightsFile));
        File.WriteAllText(Path.Combine(Models, ".current.123.abc.tmp"), "v2"); // and a pointer write cut short

        var registry = Registry();
        Assert.Equal(1, registry.CurrentVersion());
        Assert.Equal(2, registry.NextVersion());
        Assert.Equal([1], registry.List().Select(v => v.Version));
        SaveCopy(registry, 2); // the next save of v2 replaces the leftover
        Assert.False(Directory.Exists(partial));
        registry.Prune();
        Assert.True(registry.List().All(v => v.Valid));
    }

    [Fact]
    public void A_model_trained_straight_into_the_directory_becomes_v0_when_the_registry_takes_over()
    {
        TestModel.CopyTo(Models);
        var registry = Registry();
        Assert.Equal(Models, registry.CurrentPath());
        Assert.Equal(1, registry.NextVersion());
        registry.AdoptStandalone();
        Assert.Equal(0, registry.CurrentVersion());
        Assert.Equal(Path.Combine(Models, "v0"), registry.CurrentPath());
        using (var loaded = registry.Load(0, torch.CPU)) Assert.Equal(ModelFiles.ReadManifest(Models).Weights.Sha256, loaded.Manifest.Weights.Sha256);
        Assert.Equal(1, registry.NextVersion());
        registry.AdoptStandalone(); // once only
        Assert.Equal([0], registry.List().Select(v => v.Version));
    }

    [Fact]
    public void Pruning_keeps_the_newest_versions_and_always_the_current_one()
    {
        TestModel.InstallAsV1(Models);
        var registry = Registry(keep: 2);
        for (int v = 2; v <= 5; v++) SaveCopy(registry, v);
        registry.SetCurrent(2); // rolled back to an old one
        var removed = registry.Prune();
        Assert.Equal([3, 1], removed);
        Assert.Equal([5, 4, 2], registry.List().Select(v => v.Version));
        Assert.True(registry.List().Single(v => v.Current).Version == 2);
    }

    [Fact]
    public void Pruning_keeps_the_version_that_judges_even_when_current_names_another()
    {
        TestModel.InstallAsV1(Models);
        var registry = Registry(keep: 2);
        for (int v = 2; v <= 5; v++) SaveCopy(registry, v);
        registry.SetCurrent(5);
        // v5 did not load at start, and the service judges with v1: pruning must not take it away.
        Assert.Equal([3, 2], registry.Prune(judging: 1));
        Assert.Equal([5, 4, 1], registry.List().Select(v => v.Version));
    }

    [Fact]
    public void A_damaged_version_is_listed_with_its_problem_and_cannot_be_made_current()
    {
        TestModel.InstallAsV1(Models);
        var registry = Registry();
        SaveCopy(registry, 2);
        File.Delete(Path.Combine(Models, "v2", ModelFiles.ManifestFile));
        var v2 = registry.List().Single(v => v.Version == 2);
        Assert.False(v2.Valid);
        Assert.Contains("manifest.json", v2.Problem);
        Assert.Throws<ModelLoadException>(() => registry.SetCurrent(2));
        Assert.Equal(1, registry.CurrentVersion());
    }

    [Fact]
    public async Task A_corrupt_current_model_at_start_falls_back_to_the_newest_valid_version_loudly()
    {
        TestModel.InstallAsV1(Models);
        var registry = Registry();
        SaveCopy(registry, 2);
        SaveCopy(registry, 3);
        registry.SetCurrent(3);
        var weights = Path.Combine(Models, "v3", ModelFiles.WeightsFile);
        File.WriteAllBytes(weights, File.ReadAllBytes(weights)[..1000]); // truncated on disk

        var logs = new LogCapture();
        await using var service = await TestService.StartAsync(_dir.Path, new Dictionary<string, string?> { ["Logging:LogLevel:Default"] = "Information" }, logs.Attach);
        await Wait.UntilAsync(() => service.Holder.OnFallback && logs.Lines.Any(l => l.Contains("v3 could not be loaded", StringComparison.Ordinal)), "the fallback, logged");
        Assert.Equal(2, service.Holder.Version);
        Assert.True(service.Holder.OnFallback);
        Assert.Equal(1, service.Metrics.ModelFallback.Value);
        Assert.True(service.Metrics.ModelLoadFailures.Value >= 1);
        Assert.Contains(logs.Lines, l => l.Contains("v3 could not be loaded; judging with v2", StringComparison.Ordinal));
        Assert.Equal(3, service.Registry.CurrentVersion()); // nothing is rewritten behind the operator's back
    }

    [Fact]
    public async Task The_fallback_passes_over_a_candidate_its_gate_refused()
    {
        TestModel.InstallAsV1(Models);
        var registry = Registry();
        using (var model = registry.Load(1, torch.CPU))
        {
            var gate = System.Text.Json.JsonDocument.Parse("""{"decision":"reject"}""").RootElement.Clone();
            registry.Save(2, model.Module, model.Manifest with { Version = 2, ParentVersion = 1, Extra = new() { ["gate"] = gate } });
        }
        SaveCopy(registry, 3);
        registry.SetCurrent(3);
        var weights = Path.Combine(Models, "v3", ModelFiles.WeightsFile);
        File.WriteAllBytes(weights, File.ReadAllBytes(weights)[..1000]);

        await using var service = await TestService.StartAsync(_dir.Path, new Dictionary<string, string?>());
        await Wait.UntilAsync(() => service.Holder.IsJudging, "judging after the fallback");
        Assert.Equal(1, service.Holder.Version);
        Assert.True(service.Holder.OnFallback);
    }
}
