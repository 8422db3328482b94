using AnomalyMonitor.State;
using AnomalyMonitor.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace AnomalyMonitor.Tests.Pipeline;

/// <summary>The judge window's periodic save writes beside the scoring thread: a disk that stalls it holds no verdict.</summary>
public sealed class WindowSaveTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task A_stalled_window_save_holds_no_verdict_and_the_window_lands_once_the_disk_answers()
    {
        await using var service = await TestService.StartJudgingAsync(_dir.Path, new Dictionary<string, string?>()); // Judge:SaveInterval 1 s
        var (source, intake) = (service.Recording, service.Intake);
        var durable = service.App.Services.GetRequiredService<DurableWrite>();
        using var disk = new ManualResetEventSlim();
        using var entered = new ManualResetEventSlim();
        // The judge_state write blocks until released, as an fsync on a busy disk does; other stores write as usual.
        durable.Fault = store =>
        {
            if (store != "judge_state") return null;
            entered.Set();
            disk.Wait(TimeSpan.FromSeconds(60));
            return null;
        };
        var state = Path.Combine(_dir.Path, "state", "judge-state.json");
        // Items keep the scoring loop turning, so the next periodic save starts and stalls.
        for (int i = 0; !entered.IsSet; i++)
        {
            Assert.True(i < 300, "no window save started within 30 s");
            Assert.True(await intake.SubmitAsync(source.Item($"before-{i}", TestModel.NormalPng(i)), CancellationToken.None));
            await Task.Delay(100);
        }
        File.Delete(state); // whatever an earlier save left: the stalled one has not written yet

        // While the save is stalled, verdicts go on.
        var during = Enumerable.Range(0, 8).Select(i => source.Item($"during-{i}", i % 2 == 0 ? TestModel.NormalPng(i) : TestModel.AnomalyPng(i))).ToList();
        foreach (var item in during) Assert.True(await intake.SubmitAsync(item, CancellationToken.None));
        await Wait.UntilAsync(() => during.All(i => source.Settles.ContainsKey(i.Id)), "the items judged while the window save stalls", seconds: 30);
        Assert.False(File.Exists(state));

        disk.Set();
        await Wait.UntilAsync(() => File.Exists(state), "the stalled window save written once the disk answers");
        durable.Fault = null;
    }
}
