using System.Text;
using AnomalyMonitor.Core.Imaging;
using AnomalyMonitor.Hosting;
using AnomalyMonitor.Ingest;
using AnomalyMonitor.Pipeline;
using AnomalyMonitor.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace AnomalyMonitor.Tests.Pipeline;

/// <summary>An item ends exactly once, judged, rejected or handed back, and its source hears it once, after the last of its images.</summary>
public sealed class SettleContractTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static ImageRejection Refusal(string id) => new(id, "t", RejectReason.Corrupt, "bad", ReadOnlyMemory<byte>.Empty);

    [Fact]
    public void An_item_settles_once_after_it_is_decoded_and_its_last_image_has_an_outcome()
    {
        var source = new RecordingSource();
        var item = source.Item("three");
        item.AddImages(3);
        item.Judge(anomaly: false, null);
        item.Reject(Refusal("three#1"));
        item.Judge(anomaly: true, null);
        Assert.Empty(source.Settles); // the decoder may still find more images
        item.Decoded();
        Assert.Equal(1, source.Settles["three"]);
        Assert.Equal((3, 2, 1, 1, false), (item.Images, item.Judged, item.Anomalies, item.Rejections.Count, item.HandedBack));

        var back = source.Item("back");
        back.AddImages(2);
        back.Judge(anomaly: false, null);
        back.Decoded();
        back.HandBack("scoring failed");
        Assert.Equal(1, source.Settles["back"]);
        Assert.True(back.HandedBack);
        Assert.Equal("scoring failed", back.HandBackReason);

        // Never decoded (the service stopped first): the whole item goes back, once.
        var undecoded = source.Item("undecoded");
        undecoded.HandBack("stopping");
        Assert.Equal(1, source.Settles["undecoded"]);
        Assert.Empty(source.Helds);
    }

    [Fact]
    public void Held_images_are_reported_once_when_all_are_durable_and_settle_later_when_judged()
    {
        var source = new RecordingSource();
        var item = source.Item("held");
        item.AddImages(3);
        item.Hold();
        item.Reject(Refusal("held#1"));
        item.Hold();
        Assert.Empty(source.Helds);
        item.Decoded();
        Assert.Equal(1, source.Helds["held"]);
        Assert.Empty(source.Settles);
        item.Judge(anomaly: false, null, wasHeld: true);
        item.Judge(anomaly: true, null, wasHeld: true);
        Assert.Equal(1, source.Settles["held"]);
        Assert.Equal(1, source.Helds["held"]);
    }

    [Fact]
    public void Outcomes_racing_from_many_threads_still_settle_exactly_once()
    {
        var source = new RecordingSource();
        const int Images = 20_000;
        var item = source.Item("race");
        item.AddImages(Images);
        Parallel.For(0, Images, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i =>
        {
            if (i % 3 == 0) item.Reject(Refusal($"race#{i}"));
            else item.Judge(anomaly: i % 7 == 0, null);
        });
        item.Decoded();
        Assert.Equal(1, source.Settles["race"]);
        Assert.Equal(Images, item.Judged + item.Rejections.Count);
    }

    [Fact]
    public async Task Through_the_service_a_new_source_hears_each_item_once_judged_rejected_or_handed_back()
    {
        TestModel.CopyTo(Path.Combine(_dir.Path, "models"));
        // A new source is one class and one registration line.
        await using var service = await TestService.StartAsync(_dir.Path, new Dictionary<string, string?>(),
            builder => builder.Services.AddIngestSource<RecordingSource>(hosted: false));
        var source = service.App.Services.GetRequiredService<RecordingSource>();
        var intake = service.App.Services.GetRequiredService<Intake>();
        service.App.Services.GetRequiredService<ScoringStage>().BeforeScoring =
            images => images.Any(i => i.Id == "fails") ? new InvalidOperationException("injected scoring failure") : null;

        static string Envelope(string id, byte[] png) => "{\"id\":\"" + id + "\",\"image\":\"" + Convert.ToBase64String(png) + "\"}";
        var items = new[]
        {
            source.Item("normal", TestModel.NormalPng(0)),
            source.Item("anomaly", TestModel.AnomalyPng(0)),
            source.Item("corrupt", [0x89, 0x50, 0x4e, 0x47, 1, 2, 3]),
            source.Item("empty"),
            source.Item("batch", Encoding.UTF8.GetBytes($"[{Envelope("b-normal", TestModel.NormalPng(1))},{{\"id\":\"b-bad\",\"image\":\"%%\"}},{Envelope("b-anomaly", TestModel.AnomalyPng(1))}]")),
        };
        foreach (var item in items) Assert.True(await intake.SubmitAsync(item, CancellationToken.None));
        await Wait.UntilAsync(() => source.Settles.Count == items.Length, "every item settled");
        // A failure fails its whole batch: sent alone, so that only it goes back.
        var fails = source.Item("fails", TestModel.NormalPng(2));
        Assert.True(await intake.SubmitAsync(fails, CancellationToken.None));
        items = [.. items, fails];
        await Wait.UntilAsync(() => source.Settles.Count == items.Length, "the failing item settled");
        await source.SentinelSettledAsync(intake, TestModel.NormalPng(90));
        Assert.All(items, i => Assert.Equal(1, source.Settles[i.Id]));
        var byId = items.ToDictionary(i => i.Id);
        Assert.Equal((1, 0), (byId["normal"].Judged, byId["normal"].Anomalies));
        Assert.Equal((1, 1), (byId["anomaly"].Judged, byId["anomaly"].Anomalies));
        Assert.Single(byId["corrupt"].Rejections);
        Assert.Equal(RejectReason.Empty, Assert.Single(byId["empty"].Rejections).Reason);
        Assert.Equal((3, 2, 1), (byId["batch"].Images, byId["batch"].Judged, byId["batch"].Anomalies));
        Assert.Equal("b-bad", Assert.Single(byId["batch"].Rejections).Id);
        Assert.True(byId["fails"].HandedBack);
        Assert.Contains("injected", byId["fails"].HandBackReason, StringComparison.Ordinal);
        Assert.All(items.Where(i => i.Id != "fails"), i => Assert.False(i.HandedBack));
        // Rejections are recorded in one place, for every source: counted under the item's label.
        Assert.Equal(3, service.Metrics.Rejected.GetAllLabelValues().Where(l => l[0] == "recording").Sum(l => service.Metrics.Rejected.WithLabels(l).Value));
        // The count moves after the batch's items are settled: wait for the sentinel's batch to be counted.
        await Wait.UntilAsync(() => service.Pipeline.Judged >= 4 + 1, "the sentinel counted");
        Assert.Equal(4 + 1, service.Pipeline.Judged);
    }

    [Fact]
    public async Task A_reader_that_throws_an_unexpected_exception_refuses_that_item_and_decoding_goes_on()
    {
        TestModel.CopyTo(Path.Combine(_dir.Path, "models"));
        await using var service = await TestService.StartAsync(_dir.Path, new Dictionary<string, string?>(),
            builder => builder.Services.AddIngestSource<RecordingSource>(hosted: false));
        var source = service.App.Services.GetRequiredService<RecordingSource>();
        var intake = service.App.Services.GetRequiredService<Intake>();
        // More poisoned items than decode workers: an exception that escaped would end every worker.
        service.App.Services.GetRequiredService<DecodeStage>().FindFault =
            item => item.Id.StartsWith("poison", StringComparison.Ordinal) ? new NullReferenceException("injected reader bug") : null;
        var items = Enumerable.Range(0, 6).Select(i => source.Item($"poison-{i}", TestModel.NormalPng(i)))
            .Append(source.Item("normal", TestModel.NormalPng(10)))
            .Append(source.Item("anomaly", TestModel.AnomalyPng(10))).ToList();
        foreach (var item in items) Assert.True(await intake.SubmitAsync(item, CancellationToken.None));
        await Wait.UntilAsync(() => source.Settles.Count == items.Count, "every item settled");
        await source.SentinelSettledAsync(intake, TestModel.NormalPng(90));
        Assert.All(items, i => Assert.Equal(1, source.Settles[i.Id]));
        foreach (var poisoned in items.Take(6))
        {
            var refusal = Assert.Single(poisoned.Rejections);
            Assert.Equal(RejectReason.Corrupt, refusal.Reason);
            Assert.Contains("NullReferenceException: injected reader bug", refusal.Detail, StringComparison.Ordinal);
        }
        Assert.Equal((1, 0), (items[6].Judged, items[6].Anomalies));
        Assert.Equal((1, 1), (items[7].Judged, items[7].Anomalies));
        Assert.Equal(6, service.Metrics.Rejected.GetAllLabelValues().Where(l => l[0] == "recording").Sum(l => service.Metrics.Rejected.WithLabels(l).Value));
    }
}
