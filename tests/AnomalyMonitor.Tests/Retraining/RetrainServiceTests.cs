using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using AnomalyMonitor.Core.Storage;
using AnomalyMonitor.Retraining;
using AnomalyMonitor.Tests.Support;

namespace AnomalyMonitor.Tests.Retraining;

/// <summary>Retraining in the real service: real TorchSharp training on generated 16x16 images, the gate, promotion and rollback.</summary>
[Collection(TorchCollection.Name)]
public sealed class RetrainServiceTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private string Models => Path.Combine(_dir.Path, "models");

    private async Task<TestService> StartAsync(Dictionary<string, string?>? settings = null)
    {
        var all = new Dictionary<string, string?>
        {
            ["Retrain:Epochs"] = "8",
            ["Retrain:BatchSize"] = "32",
            ["Retrain:MinSamples"] = "50",
            ["Retrain:MinNewSamples"] = "100",
            ["Retrain:Holdout"] = "0.2",
            ["Retrain:Seed"] = "3",
            ["Judge:MinWindow"] = "20",
        };
        foreach (var (k, v) in settings ?? []) all[k] = v;
        var service = await TestService.StartAsync(_dir.Path, all);
        await Wait.UntilAsync(() => service.Holder.IsJudging, "the model loaded");
        return service;
    }

    private static async Task<JsonElement> PostAsync(HttpClient http, string path, HttpStatusCode expected)
    {
        using var response = await http.PostAsync(path, null);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == expected, $"{path}: {(int)response.StatusCode} {body}");
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    private async Task DropNormalsAsync(TestService service, int count, string prefix)
    {
        Directory.CreateDirectory(service.Inbox);
        long before = service.Pipeline.Judged;
        for (int i = 0; i < count; i++) File.WriteAllBytes(Path.Combine(service.Inbox, $"{prefix}{i}.png"), TestModel.NormalPng(i));
        await Wait.UntilAsync(() => service.Pipeline.Judged >= before + count, $"{count} items judged");
    }

    [Fact]
    public async Task A_scheduled_run_waits_for_MinNewSamples_and_an_on_demand_run_does_not()
    {
        TestModel.InstallAsV1(Models, weak: true);
        await using var service = await StartAsync();
        service.Store.AddRange(TestModel.Samples(60, seed: 1), TestModel.Shape);

        var scheduled = await service.Retrainer.RunAsync(force: false, CancellationToken.None);
        Assert.True(scheduled.Result == RetrainOutcome.Skipped, scheduled.Reason);
        Assert.True(scheduled.Reason.Contains("60 new sample(s)", StringComparison.Ordinal) && scheduled.Reason.Contains("MinNewSamples is 100", StringComparison.Ordinal), scheduled.Reason);

        var onDemand = await service.Retrainer.RunAsync(force: true, CancellationToken.None);
        Assert.True(onDemand.Result != RetrainOutcome.Skipped, onDemand.Reason);
        Assert.Equal(0, service.Store.CountSince(service.Store.HighWater));

        service.Store.AddRange(TestModel.Samples(100, seed: 2, prefix: "t"), TestModel.Shape);
        // Straight after the last run's promotion, before the scoring loop has swapped v2 in: the run must gate against v2.
        var enough = await service.Retrainer.RunAsync(force: false, CancellationToken.None);
        Assert.True(enough.Result != RetrainOutcome.Skipped, enough.Reason);
        Assert.Equal(3, service.Metrics.Retrains.WithLabels("skipped").Value + service.Metrics.Retrains.WithLabels("promoted").Value + service.Metrics.Retrains.WithLabels("rejected").Value);
    }

    [Fact]
    public async Task A_store_that_turns_over_faster_than_the_quarantine_says_so_when_the_run_is_skipped()
    {
        TestModel.InstallAsV1(Models, weak: true);
        await using var service = await StartAsync(new() { ["NormalStore:Capacity"] = "80", ["Retrain:QuarantineAge"] = "01:00:00" });
        service.Store.AddRange(TestModel.Samples(80, seed: 1, receivedAt: TimeProvider.System.GetUtcNow()), TestModel.Shape);

        var outcome = await service.Retrainer.RunAsync(force: true, CancellationToken.None);

        Assert.True(outcome.Result == RetrainOutcome.Skipped, outcome.Reason);
        Assert.Contains("0 sample(s) old enough", outcome.Reason, StringComparison.Ordinal);
        Assert.Contains("80 of its samples are younger than the quarantine: raise NormalStore:Capacity", outcome.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_better_candidate_is_promoted_and_swapped_in_with_a_fresh_threshold_and_rollback_restores_the_old_one()
    {
        TestModel.InstallAsV1(Models, weak: true);
        await using var service = await StartAsync();
        await DropNormalsAsync(service, 30, "before");
        Assert.True(service.Holder.Judge!.UsingWindow, "the window judges before the retrain");
        service.Store.AddRange(TestModel.Samples(400, seed: 4), TestModel.Shape);
        using var http = service.Http();

        var outcome = await PostAsync(http, "/api/retrain?wait=true", HttpStatusCode.OK);
        Assert.Equal("promoted", outcome.GetProperty("result").GetString());
        Assert.Equal(2, outcome.GetProperty("version").GetInt32());
        await Wait.UntilAsync(() => service.Holder.Version == 2, "v2 swapped in");

        var v2 = ModelFiles.ReadManifest(Path.Combine(Models, "v2"));
        Assert.Equal("v2", File.ReadAllText(Path.Combine(Models, "current")).Trim());
        Assert.Equal(1, v2.ParentVersion);
        Assert.StartsWith("sha256:", v2.Data.Fingerprint, StringComparison.Ordinal);
        Assert.Equal("holdout", v2.Calibration.Source);
        var gate = v2.Extra!["gate"];
        Assert.Equal("promote", gate.GetProperty("decision").GetString());
        Assert.True(gate.GetProperty("candidateMeanError").GetDouble() < gate.GetProperty("currentMeanError").GetDouble());
        // Re-baselined: the window restarted, and until it refills the new model's own calibration judges.
        Assert.Equal(0, service.Holder.Judge!.WindowCount);
        Assert.Equal(v2.Calibration.LogMean, service.Holder.Judge.Statistics().Mean, 9);
        Assert.Equal(1, service.Metrics.Retrains.WithLabels("promoted").Value);
        Assert.True(service.Metrics.LastPromotion.Value > 0);

        // Alerts say which version judged them.
        long judged = service.Pipeline.Judged;
        File.WriteAllBytes(Path.Combine(service.Inbox, "odd.png"), TestModel.AnomalyPng(0));
        await Wait.UntilAsync(() => service.Pipeline.Judged > judged, "the new item judged");
        Assert.True(service.Count("anomaly") >= 1, $"noise judged normal: threshold {service.Holder.Judge!.Threshold} judged {service.Pipeline.Judged} normal {service.Count("normal")} anomaly {service.Count("anomaly")} files {string.Join(",", Directory.GetFiles(service.Inbox, "*", SearchOption.AllDirectories).Where(f => f.Contains("odd")))}");
        await service.EvidenceWrittenAsync(); // record.json exists a moment before its content does
        await Wait.UntilAsync(() => Directory.GetFiles(Path.Combine(_dir.Path, "evidence"), "record.json", SearchOption.AllDirectories).Length == 1, "the evidence written");
        var record = Directory.GetFiles(Path.Combine(_dir.Path, "evidence"), "record.json", SearchOption.AllDirectories).Single();
        Assert.Equal(2, JsonDocument.Parse(File.ReadAllText(record)).RootElement.GetProperty("modelVersion").GetInt32());

        // Rollback, over HTTP, to v1 with v1's own calibration.
        await PostAsync(service.Http(""), "/api/models/1/rollback", HttpStatusCode.Unauthorized);
        await PostAsync(http, "/api/models/9/rollback", HttpStatusCode.NotFound);
        await PostAsync(http, "/api/models/1/rollback", HttpStatusCode.OK);
        await Wait.UntilAsync(() => service.Holder.Version == 1, "v1 swapped back in");
        Assert.Equal("v1", File.ReadAllText(Path.Combine(Models, "current")).Trim());
        var v1 = ModelFiles.ReadManifest(Path.Combine(Models, "v1"));
        Assert.Equal(v1.Calibration.LogMean, service.Holder.Judge!.Statistics().Mean, 9);
        Assert.Equal(1, service.Metrics.Rollbacks.Value);

        var listing = await http.GetFromJsonAsync<JsonElement>("/api/models");
        Assert.Equal(1, listing.GetProperty("current").GetInt32());
        Assert.Equal([2, 1], listing.GetProperty("versions").EnumerateArray().Select(v => v.GetProperty("version").GetInt32()));
        Assert.Equal("promoted", listing.GetProperty("retrains")[0].GetProperty("result").GetString());
    }

    [Fact]
    public async Task A_rollback_during_a_run_is_not_undone_by_the_candidate_that_passed_its_gate()
    {
        TestModel.InstallAsV1(Models, weak: true);
        // v2: the weak model again, current, so that the candidate passes its gate as against v1 above.
        TestModel.CopyVersion(Models, 1, 2);
        File.WriteAllText(Path.Combine(Models, "current"), "v2\n");
        await using var service = await StartAsync();
        Assert.Equal(2, service.Holder.Version);
        service.Store.AddRange(TestModel.Samples(400, seed: 4), TestModel.Shape);
        var promotion = service.App.Services.GetRequiredServiceOf<AnomalyMonitor.Registry.Promotion>();
        service.Retrainer.BeforePromotion = () => promotion.Rollback(1); // the operator, while the run trains

        var outcome = await service.Retrainer.RunAsync(force: true, CancellationToken.None);

        Assert.True(outcome.Result == RetrainOutcome.Skipped && outcome.Gate!.Promoted, $"{outcome.Result}: {outcome.Reason}");
        Assert.Contains("v1 was made current during the run", outcome.Reason, StringComparison.Ordinal);
        Assert.Equal("v1", File.ReadAllText(Path.Combine(Models, "current")).Trim());
        await Wait.UntilAsync(() => service.Holder.Version == 1, "v1 judging, as the operator asked");
        Assert.True(Directory.Exists(Path.Combine(Models, "v3")), "the candidate is kept");
        Assert.Equal(0, service.Metrics.Retrains.WithLabels("promoted").Value);
    }

    [Fact]
    public async Task A_run_just_after_a_promotion_gates_against_the_promoted_version_before_it_is_swapped_in()
    {
        TestModel.InstallAsV1(Models, weak: true);
        TestModel.CopyVersion(Models, 1, 2);
        await using var service = await StartAsync();
        service.Store.AddRange(TestModel.Samples(400, seed: 4), TestModel.Shape);
        // The scoring loop held inside a batch, so that v2 stays offered and not yet installed.
        using var hold = new ScoringHold(service);
        Directory.CreateDirectory(service.Inbox);
        File.WriteAllBytes(Path.Combine(service.Inbox, "held.png"), TestModel.NormalPng(0));
        hold.Entered();
        service.App.Services.GetRequiredServiceOf<AnomalyMonitor.Registry.Promotion>().Promote(2);
        Assert.Equal(1, service.Holder.Version);

        var run = service.Retrainer.RunAsync(force: true, CancellationToken.None);
        hold.Release();
        var outcome = await run;

        Assert.True(outcome.Result == RetrainOutcome.Promoted, $"{outcome.Result}: {outcome.Reason}");
        Assert.Equal(2, outcome.ParentVersion);
        Assert.Equal("v3", File.ReadAllText(Path.Combine(Models, "current")).Trim());
    }

    [Fact]
    public async Task A_worse_candidate_is_rejected_recorded_and_the_current_model_keeps_judging()
    {
        TestModel.InstallAsV1(Models);
        // One epoch on 60 images cannot match the trained model.
        await using var service = await StartAsync(new() { ["Retrain:Epochs"] = "1" });
        service.Store.AddRange(TestModel.Samples(60, seed: 5), TestModel.Shape);

        var outcome = await service.Retrainer.RunAsync(force: true, CancellationToken.None);
        Assert.Equal(RetrainOutcome.Rejected, outcome.Result);
        Assert.Contains("mean held-out error", outcome.Reason);
        Assert.Equal(1, service.Holder.Version);
        Assert.Equal("v1", File.ReadAllText(Path.Combine(Models, "current")).Trim());
        var v2 = ModelFiles.ReadManifest(Path.Combine(Models, "v2"));
        Assert.Equal("reject", v2.Extra!["gate"].GetProperty("decision").GetString());
        Assert.True(v2.Extra["gate"].GetProperty("ratio").GetDouble() > 1.05);
        Assert.Equal(1, service.Metrics.Retrains.WithLabels("rejected").Value);
        Assert.Equal(1, service.Metrics.RetrainUnsuccessful.Value);
    }

    [Fact]
    public async Task A_candidate_whose_loss_turns_NaN_is_rejected()
    {
        // An MSE model, so that a huge pixel value overflows the loss (BCE refuses such input outright instead).
        TestModel.InstallAsV1(Models, loss: AnomalyMonitor.Core.Scoring.LossKind.Mse);
        await using var service = await StartAsync();
        var samples = TestModel.Samples(80, seed: 6);
        foreach (var s in samples) s.Pixels[3] = float.NaN;
        service.Store.AddRange(samples, TestModel.Shape);

        var outcome = await service.Retrainer.RunAsync(force: true, CancellationToken.None);
        Assert.Equal(RetrainOutcome.Rejected, outcome.Result);
        Assert.Contains("NaN", outcome.Reason);
        Assert.Equal(1, service.Holder.Version);
        Assert.Equal("v1", File.ReadAllText(Path.Combine(Models, "current")).Trim());
    }

    [Fact]
    public async Task Items_keep_being_judged_while_a_retrain_runs_and_stopping_cancels_it_without_touching_the_model()
    {
        TestModel.InstallAsV1(Models);
        // Early stopping off: with it, a run on 300 samples could converge and end before the 25 items are judged.
        var service = await StartAsync(new() { ["Retrain:Epochs"] = "100000", ["Retrain:Patience"] = "0", ["Retrain:Seed"] = null });
        try
        {
            service.Store.AddRange(TestModel.Samples(300, seed: 7), TestModel.Shape);
            using var http = service.Http();
            await PostAsync(http, "/api/retrain", HttpStatusCode.Accepted);
            await Wait.UntilAsync(() => service.Retrainer.Running, "the retrain started");
            await PostAsync(http, "/api/retrain", HttpStatusCode.Conflict);

            await DropNormalsAsync(service, 25, "during");
            Assert.True(service.Retrainer.Running, "all 25 items were judged while the retrain was still running");

            await service.StopAsync();
            var outcome = service.Retrainer.History[0];
            Assert.Equal(RetrainOutcome.Cancelled, outcome.Result);
            Assert.False(Directory.Exists(Path.Combine(Models, "v2")), "a cancelled run saves nothing");
            Assert.Equal("v1", File.ReadAllText(Path.Combine(Models, "current")).Trim());
            Assert.Equal(1, service.Metrics.Retrains.WithLabels("cancelled").Value);
        }
        finally
        {
            await service.DisposeAsync();
        }
    }
}
