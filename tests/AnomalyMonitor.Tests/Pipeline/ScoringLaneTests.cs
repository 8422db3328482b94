using AnomalyMonitor.Ingest;
using AnomalyMonitor.Pipeline;
using AnomalyMonitor.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace AnomalyMonitor.Tests.Pipeline;

/// <summary>Models:Lanes: two batches scored side by side are judged like any other, each item once, and a failure stays with its own batch.</summary>
public sealed class ScoringLaneTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task Batches_scored_side_by_side_judge_every_item_once_and_a_failing_batch_goes_back_alone()
    {
        await using var service = await TestService.StartJudgingAsync(_dir.Path, new Dictionary<string, string?>
        {
            ["Models:Threads"] = "2",
            ["Models:Lanes"] = "2",
            ["Pipeline:MaxBatchSize"] = "2",
            ["Pipeline:DecodeWorkers"] = "2",
        });
        Assert.Equal(2, service.Holder.Lanes);
        Assert.NotNull(service.Holder.SideScorer);
        var (source, intake) = (service.Recording, service.Intake);

        // The first batch waits until every item is in: behind it the decoders fill the ready queue, so the
        // batches after it find another waiting and go two at a time.
        using var release = new ManualResetEventSlim();
        int calls = 0;
        service.App.Services.GetRequiredService<ScoringStage>().BeforeScoring = images =>
        {
            if (Interlocked.Increment(ref calls) == 1) release.Wait(TimeSpan.FromSeconds(30));
            return images.Any(i => i.Id == "fails") ? new InvalidOperationException("injected scoring failure") : null;
        };
        var items = new List<IngestItem>();
        for (int i = 0; i < 40; i++)
            items.Add(i == 25 ? source.Item("fails", TestModel.NormalPng(i)) : source.Item($"item-{i:D2}", i % 4 == 3 ? TestModel.AnomalyPng(i) : TestModel.NormalPng(i)));
        foreach (var item in items) Assert.True(await intake.SubmitAsync(item, CancellationToken.None));
        // Out of the queue: at most 2 in the held batch and 2 in each worker's own, so 10 or more out means at
        // least 3 in the ready queue of batches of at most 2, that is two batches waiting when the first is released.
        var queue = service.App.Services.GetRequiredService<ItemQueue>();
        await Wait.UntilAsync(() => queue.Count <= items.Count - 10, "the decoders filled the ready queue");
        release.Set();

        await Wait.UntilAsync(() => source.Settles.Count == items.Count, "every item settled");
        await Task.Delay(300); // a second settlement would come from the same pipeline threads, at once
        Assert.All(items, i => Assert.Equal(1, source.Settles[i.Id]));
        Assert.True(service.Metrics.SideBySide.Value >= 1, "no batch was scored on the second lane");
        var fails = items.Single(i => i.Id == "fails");
        Assert.True(fails.HandedBack);
        Assert.Contains("injected", fails.HandBackReason, StringComparison.Ordinal);
        // Its batch partner (batches of 2) goes back with it; every other item is judged, anomalies as anomalies.
        var back = items.Where(i => i.HandedBack).ToList();
        Assert.InRange(back.Count, 1, 2);
        foreach (var item in items.Except(back))
        {
            bool anomaly = int.Parse(item.Id[^2..], System.Globalization.CultureInfo.InvariantCulture) % 4 == 3;
            Assert.Equal((1, anomaly ? 1 : 0), (item.Judged, item.Anomalies));
        }
    }
}
