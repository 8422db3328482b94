using AnomalyMonitor.Ingest;
using AnomalyMonitor.Pipeline;
using AnomalyMonitor.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace AnomalyMonitor.Tests.Pipeline;

/// <summary>
/// Pipeline:MaxBatchWait bounds how long a batch waits for company while the scorer has room for it. While the
/// scorer is busy and its queue of ready batches is full, a due batch keeps taking items instead of waiting half
/// empty in line: a backlog that trickles in (a folder, one file at a time) is scored in full batches.
/// </summary>
public sealed class BatchFillingTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task While_the_scorer_is_busy_a_due_batch_keeps_filling()
    {
        await using var service = await TestService.StartJudgingAsync(_dir.Path, new Dictionary<string, string?>
        {
            ["Models:Lanes"] = "1",
            ["Pipeline:DecodeWorkers"] = "1",
            ["Pipeline:MaxBatchSize"] = "32",
            ["Pipeline:MaxBatchWait"] = "00:00:00.001",
        });
        var (source, intake) = (service.Recording, service.Intake);
        var queue = service.App.Services.GetRequiredService<ItemQueue>();

        using var release = new ManualResetEventSlim();
        var sizes = new System.Collections.Concurrent.ConcurrentQueue<int>();
        service.App.Services.GetRequiredService<ScoringStage>().BeforeScoring = images =>
        {
            sizes.Enqueue(images.Count);
            if (sizes.Count == 1) release.Wait(TimeSpan.FromSeconds(30));
            return null;
        };
        const int Count = 20;
        var items = Enumerable.Range(0, Count).Select(i => source.Item($"item-{i:D2}", TestModel.NormalPng(i))).ToList();
        Assert.True(await intake.SubmitAsync(items[0], CancellationToken.None));
        await Wait.UntilAsync(() => !sizes.IsEmpty, "the first batch reached the scorer, which holds it");
        // Each item comes long after the batch wait: two batches fill the ready queue, and every later item
        // must join the one batch still filling. Before, that batch waited in line with its one item while the
        // rest stayed in the item queue.
        for (int i = 1; i < Count; i++)
        {
            await Task.Delay(10);
            Assert.True(await intake.SubmitAsync(items[i], CancellationToken.None));
        }
        await Wait.UntilAsync(() => queue.Count == 0, "the decoder took every item while the scorer was busy");
        release.Set();

        await Wait.UntilAsync(() => source.Settles.Count == Count, "every item settled");
        Assert.All(items, i => Assert.Equal((1, 1, 0), (source.Settles[i.Id], i.Judged, i.Anomalies)));
        // One held by the scorer, two in its ready queue, one that took the rest (fewer if items came together).
        Assert.InRange(sizes.Count, 2, 4);
        Assert.Equal(Count, sizes.Sum());
    }
}
