using AnomalyMonitor.Core.Storage;
using AnomalyMonitor.Registry;
using AnomalyMonitor.Tests.Support;

namespace AnomalyMonitor.Tests.Retraining;

/// <summary>A promoted version whose files load but which cannot judge is refused; the model before goes on judging.</summary>
public sealed class ModelInstallTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private string Models => Path.Combine(_dir.Path, "models");

    /// <summary>v1 current, and v2: the same weights (their checksum holds), a manifest whose calibration is null, which no judge can use.</summary>
    private void MakeV2ThatCannotJudge()
    {
        TestModel.InstallAsV1(Models);
        TestModel.CopyVersion(Models, 1, 2, manifest => manifest["calibration"] = null);
    }

    [Fact]
    public async Task A_version_that_loads_but_cannot_judge_is_refused_and_scoring_goes_on_with_current_named_back()
    {
        MakeV2ThatCannotJudge();
        await using var service = await TestService.StartAsync(_dir.Path, new Dictionary<string, string?>());
        await Wait.UntilAsync(() => service.Holder.IsJudging, "v1 judging");

        // A promotion or an operator's rollback is refused before "current" changes, and says why.
        Assert.Throws<ModelLoadException>(() => service.App.Services.GetRequiredServiceOf<Promotion>().Promote(2));
        using (var http = service.Http())
        using (var rollback = await http.PostAsync("/api/models/2/rollback", null))
        {
            Assert.Equal(System.Net.HttpStatusCode.Conflict, rollback.StatusCode);
            Assert.Contains("cannot judge", await rollback.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
        Assert.Equal(1, service.Registry.CurrentVersion());
        Assert.Equal(0, service.Metrics.Rollbacks.Value);

        // Offered all the same (as a path that skips that check would): the scoring loop refuses it and names v1 back.
        service.Registry.SetCurrent(2);
        service.Holder.Offer(service.Registry.Load(2, service.Holder.Device));
        await Wait.UntilAsync(() => service.Metrics.ModelLoadFailures.Value == 1, "v2 refused");

        Assert.Equal(1, service.Holder.Version);
        Assert.Equal(1, service.Registry.CurrentVersion());
        var inbox = Path.Combine(_dir.Path, "inbox");
        File.WriteAllBytes(Path.Combine(inbox, "after.png"), TestModel.NormalPng(3));
        await Wait.UntilAsync(() => File.Exists(Path.Combine(inbox, "processed", "normal", "after.png")), "an image judged after the refusal");
    }

    [Fact]
    public async Task A_current_version_that_cannot_judge_at_start_falls_back_to_the_newest_that_can()
    {
        MakeV2ThatCannotJudge();
        File.WriteAllText(Path.Combine(Models, "current"), "v2\n");

        await using var service = await TestService.StartAsync(_dir.Path, new Dictionary<string, string?>());
        await Wait.UntilAsync(() => service.Holder.IsJudging, "judging after the fallback");

        Assert.Equal(1, service.Holder.Version);
        Assert.True(service.Holder.OnFallback);
        Assert.Equal(1, service.Metrics.ModelLoadFailures.Value);
    }
}
