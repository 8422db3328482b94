using AnomalyMonitor.Retraining;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Quartz;
using AnomalyMonitor.Tests.Support;

namespace AnomalyMonitor.Tests.Retraining;

/// <summary>The schedule as the service registers it, run by a real Quartz scheduler on a fake clock.</summary>
public sealed class RetrainScheduleTests
{
    /// <summary>Stands in for the retrainer: counts runs, records overlap, and holds each run until released.</summary>
    private sealed class CountingRunner : IRetrainRunner
    {
        private int _active;
        public int Runs;
        public int MaxActive;
        public TaskCompletionSource Release = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public readonly List<bool> Forced = [];

        public async Task<RetrainOutcome> RunAsync(bool force, CancellationToken cancellationToken)
        {
            int now = Interlocked.Increment(ref _active);
            lock (Forced)
            {
                MaxActive = Math.Max(MaxActive, now);
                Forced.Add(force);
            }
            await Release.Task.WaitAsync(cancellationToken);
            Interlocked.Decrement(ref _active);
            Interlocked.Increment(ref Runs);
            return new RetrainOutcome(RetrainOutcome.Skipped, force ? "forced" : "scheduled", DateTimeOffset.UnixEpoch, 0, 0);
        }

        public int Started
        {
            get { lock (Forced) return Forced.Count; }
        }
    }

    private static async Task<(IScheduler Scheduler, CountingRunner Runner, ISchedulerFactory Factory)> StartAsync(FakeTimeProvider time, RetrainOptions options)
    {
        var runner = new CountingRunner();
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddSingleton<IRetrainRunner>(runner);
        services.AddQuartz(q => q.UseTimeProvider(time).AddRetrainJob(options));
        var provider = services.BuildServiceProvider();
        var factory = provider.GetRequiredService<ISchedulerFactory>();
        var scheduler = await factory.GetScheduler();
        await scheduler.Start();
        return (scheduler, runner, factory);
    }

    [Fact]
    public async Task The_cron_schedule_fires_every_six_hours_by_default_and_not_before()
    {
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2026-03-01T00:30:00Z", System.Globalization.CultureInfo.InvariantCulture));
        var (scheduler, runner, _) = await StartAsync(time, new RetrainOptions());
        runner.Release.SetResult();
        try
        {
            time.Advance(TimeSpan.FromHours(5));
            await Task.Delay(500);
            Assert.Equal(0, runner.Runs);
            time.Advance(TimeSpan.FromMinutes(31)); // 06:01
            await Wait.UntilAsync(() => runner.Runs == 1, "the 06:00 run");
            time.Advance(TimeSpan.FromHours(6)); // 12:01
            await Wait.UntilAsync(() => runner.Runs == 2, "the 12:00 run");
            Assert.All(runner.Forced, f => Assert.False(f, "scheduled runs honour MinNewSamples"));
            var trigger = await scheduler.GetTrigger(RetrainJob.ScheduleKey);
            Assert.Equal(DateTimeOffset.Parse("2026-03-01T18:00:00Z", System.Globalization.CultureInfo.InvariantCulture), trigger!.NextFireTimeUtc);
        }
        finally
        {
            await scheduler.Shutdown(true);
        }
    }

    [Fact]
    public async Task Runs_due_while_one_is_in_progress_wait_for_it_and_missed_slots_fire_once()
    {
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2026-03-01T00:30:00Z", System.Globalization.CultureInfo.InvariantCulture));
        var (scheduler, runner, _) = await StartAsync(time, new RetrainOptions());
        try
        {
            await scheduler.TriggerJob(RetrainJob.Key, new JobDataMap { [RetrainJob.Force] = true });
            await Wait.UntilAsync(() => runner.Started == 1, "the first run started");
            await scheduler.TriggerJob(RetrainJob.Key, new JobDataMap { [RetrainJob.Force] = true });
            // The first run trains past two scheduled slots (06:00 and 12:00).
            time.Advance(TimeSpan.FromHours(13));
            await Task.Delay(1000);
            Assert.Equal(1, runner.Started); // everything else waits: DisallowConcurrentExecution

            runner.Release.SetResult();
            await Wait.UntilAsync(() => runner.Runs >= 3, "the waiting runs");
            await Task.Delay(1000);
            Assert.Equal(3, runner.Runs); // first, the second on-demand run, and the missed slots once
            Assert.Equal(1, runner.MaxActive);
            Assert.Equal(2, runner.Forced.Count(f => f));
            Assert.Equal(1, runner.Forced.Count(f => !f));
            var trigger = await scheduler.GetTrigger(RetrainJob.ScheduleKey);
            Assert.Equal(DateTimeOffset.Parse("2026-03-01T18:00:00Z", System.Globalization.CultureInfo.InvariantCulture), trigger!.NextFireTimeUtc);
        }
        finally
        {
            await scheduler.Shutdown(true);
        }
    }

    [Fact]
    public async Task An_on_demand_trigger_answers_with_its_own_run_not_the_scheduled_one_ahead_of_it()
    {
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2026-03-01T05:59:00Z", System.Globalization.CultureInfo.InvariantCulture));
        var (scheduler, runner, factory) = await StartAsync(time, new RetrainOptions());
        try
        {
            time.Advance(TimeSpan.FromMinutes(2));
            await Wait.UntilAsync(() => runner.Started == 1, "the 06:00 run started");
            var mine = await RetrainScheduling.TriggerNowAsync(factory, CancellationToken.None);
            runner.Release.SetResult();
            var outcome = await mine.WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal("forced", outcome.Reason);
            Assert.Equal([false, true], runner.Forced);
        }
        finally
        {
            await scheduler.Shutdown(true);
        }
    }

    [Fact]
    public void An_invalid_schedule_is_reported_by_validation_with_the_other_problems()
    {
        var validator = new RetrainOptionsValidator();
        var result = validator.Validate(null, new RetrainOptions { Schedule = "every six hours", Holdout = 0.9, Threads = 0 });
        Assert.True(result.Failed);
        Assert.Contains(result.Failures!, f => f.Contains("Retrain:Schedule", StringComparison.Ordinal));
        Assert.Contains(result.Failures!, f => f.Contains("Retrain:Holdout", StringComparison.Ordinal));
        Assert.Contains(result.Failures!, f => f.Contains("Retrain:Threads", StringComparison.Ordinal));
    }
}
