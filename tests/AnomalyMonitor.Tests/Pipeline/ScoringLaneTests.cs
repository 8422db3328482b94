using AnomalyMonitor.Core.Imaging;
using AnomalyMonitor.Core.Scoring;
using AnomalyMonitor.Core.Storage;
using AnomalyMonitor.Ingest;
using AnomalyMonitor.Pipeline;
using AnomalyMonitor.Pipeline.Scoring;
using AnomalyMonitor.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace AnomalyMonitor.Tests.Pipeline;

/// <summary>
/// Models:Lanes: two batches scored side by side are judged like any other, each item once, and a failure
/// stays with its own batch; a batch ready while the other lane scores starts at once, and is judged after it.
/// </summary>
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
        await source.SentinelSettledAsync(intake, TestModel.NormalPng(90));
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

    [Fact]
    public async Task A_batch_ready_while_the_other_lane_scores_starts_at_once_and_is_judged_after_it()
    {
        using var gate = new ManualResetEventSlim();
        var gated = new GatedScorerFactory("slow", gate);
        await using var service = await TestService.StartJudgingAsync(_dir.Path, new Dictionary<string, string?>
        {
            ["Models:Threads"] = "2",
            ["Models:Lanes"] = "2",
            ["Pipeline:MaxBatchSize"] = "1",
        }, builder => builder.Services.AddSingleton<IBatchScorerFactory>(gated));
        var (source, intake) = (service.Recording, service.Intake);
        // On a loaded machine the fast batch may take more than the default second to be ready.
        service.App.Services.GetRequiredService<ScoringStage>().LaneWindow = TimeSpan.FromMinutes(5);

        var slow = source.Item("slow", TestModel.NormalPng(1));
        var fast = source.Item("fast", TestModel.AnomalyPng(2));
        try
        {
            Assert.True(await intake.SubmitAsync(slow, CancellationToken.None));
            await Wait.UntilAsync(() => gated.Entered.IsSet, "the slow batch began scoring");
            Assert.True(await intake.SubmitAsync(fast, CancellationToken.None));
            // One lane still holds the slow batch: the fast one is scored on the other instead of waiting behind it.
            await Wait.UntilAsync(() => gated.Scored.Contains("fast"), "the fast batch was scored while the slow one still was");
            Assert.DoesNotContain("slow", gated.Scored);
            Assert.Empty(source.Settles); // judged in the order they came: the fast one waits for the slow one's verdict
        }
        finally
        {
            gate.Set(); // a failed assertion must not leave the service's shutdown waiting on the held forward pass
        }
        await Wait.UntilAsync(() => source.Settles.Count == 2, "both settled");
        Assert.Equal(["slow", "fast"], source.Settled.Select(i => i.Id));
        Assert.Equal((1, 0), (slow.Judged, slow.Anomalies));
        Assert.Equal((1, 1), (fast.Judged, fast.Anomalies));
        Assert.True(service.Metrics.SideBySide.Value >= 1, "the fast batch was not counted as scored beside another");
    }

    /// <summary>The real scorer, held at the batch with one image until the test lets it go; records what it has scored.</summary>
    private sealed class GatedScorerFactory(string heldId, ManualResetEventSlim gate) : IBatchScorerFactory
    {
        private readonly TorchBatchScorerFactory _inner = new();

        public string HeldId => heldId;
        public ManualResetEventSlim Gate => gate;
        public ManualResetEventSlim Entered { get; } = new();
        public System.Collections.Concurrent.ConcurrentBag<string> Scored { get; } = [];

        public IBatchScorer Create(LoadedModel model) => new Gated(_inner.Create(model), this);

        private sealed class Gated(IBatchScorer inner, GatedScorerFactory factory) : IBatchScorer
        {
            public ImageShape Shape => inner.Shape;
            public string Kind => inner.Kind;

            public void Score(Batch batch, ScoreOutput output, float reconstructAbove)
            {
                var ids = batch.Images.Take(batch.Count).Select(i => i.Id).ToList();
                if (ids.Contains(factory.HeldId))
                {
                    factory.Entered.Set();
                    factory.Gate.Wait(TimeSpan.FromSeconds(60));
                }
                inner.Score(batch, output, reconstructAbove);
                foreach (var id in ids) factory.Scored.Add(id);
            }

            public void Reconstruct(Batch batch, IReadOnlyList<int> indices, ScoreOutput output) => inner.Reconstruct(batch, indices, output);

            public void Dispose() => inner.Dispose();
        }
    }
}
