using AnomalyMonitor.Tests.Support;

namespace AnomalyMonitor.Tests.Service;

/// <summary>The service with no model: it learns one from the first items, for real, then judges them all.</summary>
[Collection(TorchCollection.Name)]
public sealed class ColdStartTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private string In(params string[] parts) => Path.Combine([_dir.Path, "inbox", .. parts]);

    [Fact]
    public async Task Cold_start_learns_from_the_first_items_then_judges_them_all()
    {
        await using var service = await TestService.StartAsync(_dir.Path, new Dictionary<string, string?>
        {
            ["Bootstrap:Samples"] = "120",
            ["Bootstrap:Shape"] = "16x16x1",
            ["Bootstrap:Epochs"] = "10",
            ["Bootstrap:Seed"] = "3",
        });
        Assert.False(service.Holder.IsJudging);
        using var http = new HttpClient();
        var ready = await http.GetAsync(service.BaseUrl + "/readyz");
        Assert.Equal(System.Net.HttpStatusCode.ServiceUnavailable, ready.StatusCode);
        Assert.Contains("learning", await ready.Content.ReadAsStringAsync());
        // The gauge is set by the pipeline's loop, which may start a moment after the host does.
        await Wait.UntilAsync(() => service.Metrics.State.WithLabels("learning").Value == 1, "state{state=learning} 1");

        for (int i = 0; i < 120; i++) File.WriteAllBytes(Path.Combine(service.Inbox, $"first-{i:D3}.png"), TestModel.NormalPng(i));
        await Wait.UntilAsync(() => service.Holder.IsJudging, "the first model trained", seconds: 120);
        await Wait.UntilAsync(() => service.Pipeline.Judged >= 120, "the held items judged");
        Assert.True(File.Exists(Path.Combine(_dir.Path, "models", "v1", "manifest.json")));
        Assert.Equal("v1", File.ReadAllText(Path.Combine(_dir.Path, "models", "current")).Trim());
        Assert.Equal(1, service.Metrics.State.WithLabels("judging").Value);
        // The held items trained the model: their in-sample scores would pull the window down, so none entered it.
        Assert.Equal(0, service.Holder.Judge!.WindowCount);

        File.WriteAllBytes(Path.Combine(service.Inbox, "after-stripes.png"), TestModel.AnomalyPng(0));
        await Wait.UntilAsync(() => File.Exists(In("processed", "anomaly", "after-stripes.png")), "an anomaly judged by the learned model");
        await Wait.UntilAsync(() => Directory.GetFiles(In("processed", "normal")).Length + Directory.GetFiles(In("processed", "anomaly")).Length == 121, "all 121 files moved");
    }

    [Fact]
    public async Task A_latent_cold_start_pools_its_fits_on_all_codes_and_calibrates_out_of_sample()
    {
        // The defaults' density on a small sample: 120 items, 30 held out, codes of 16 values carry 2 components a fit.
        await using var service = await TestService.StartAsync(_dir.Path, new Dictionary<string, string?>
        {
            ["Bootstrap:Samples"] = "120",
            ["Bootstrap:Shape"] = "16x16x1",
            ["Bootstrap:Epochs"] = "2",
            ["Bootstrap:Seed"] = "5",
            ["Bootstrap:Score"] = "latent",
            ["Bootstrap:LatentComponents"] = "2",
        });
        for (int i = 0; i < 120; i++) File.WriteAllBytes(Path.Combine(service.Inbox, $"first-{i:D3}.png"), TestModel.NormalPng(i));
        await Wait.UntilAsync(() => service.Holder.IsJudging, "the first model trained", seconds: 120);

        var manifest = AnomalyMonitor.Core.Storage.ModelFiles.ReadManifest(Path.Combine(_dir.Path, "models", "v1"));
        Assert.Equal(3, manifest.Training.LatentFits);
        Assert.True(manifest.Training.LatentHeldOut);
        Assert.Equal(2 * 3, manifest.Detector?.Mixture?.Components);
        Assert.Equal("validation (cross-fitted)", manifest.Calibration.Source);
        Assert.Equal(30, manifest.Calibration.Count);
        await Wait.UntilAsync(() => service.Pipeline.Judged >= 120, "the held items judged");
    }
}
