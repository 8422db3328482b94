using Quartz;

namespace AnomalyMonitor.Retraining;

/// <summary>The Quartz job: one retraining run. Never concurrent with itself, whoever triggers it.</summary>
public sealed class RetrainJob(IRetrainRunner runner) : IJob
{
    public static readonly JobKey Key = new("retrain", "anomaly-monitor");
    public static readonly TriggerKey ScheduleKey = new("retrain-schedule", "anomaly-monitor");
    /// <summary>Job data set by on-demand runs: train even with fewer than Retrain:MinNewSamples new samples.</summary>
    public const string Force = "force";
    /// <summary>Job data set by an on-demand run that waits: the promise of that run's own outcome.</summary>
    public const string Reply = "reply";

    public async ValueTask Execute(IJobExecutionContext context, CancellationToken cancellationToken)
    {
        var reply = context.MergedJobDataMap.TryGetValue(Reply, out var r) ? r as TaskCompletionSource<RetrainOutcome> : null;
        try
        {
            var outcome = await runner.RunAsync(context.MergedJobDataMap.ContainsKey(Force), cancellationToken).ConfigureAwait(false);
            context.Result = outcome;
            reply?.TrySetResult(outcome);
        }
        finally
        {
            reply?.TrySetCanceled(CancellationToken.None);
        }
    }
}

public static class RetrainScheduling
{
    /// <summary>
    /// Registers the job and, when retraining is enabled, its cron trigger. A misfire (a slot missed while the
    /// previous run still trained) fires once as soon as possible, not once per missed slot.
    /// </summary>
    public static IQuartzBuilder AddRetrainJob(this IQuartzBuilder quartz, RetrainOptions options)
    {
        quartz.AddJob<RetrainJob>(j => j.WithIdentity(RetrainJob.Key).StoreDurably().DisallowConcurrentExecution());
        // An invalid expression is reported by the options validator with every other problem; do not throw here.
        if (options.Enabled && CronExpression.TryParse(options.Schedule, out _))
        {
            quartz.AddTrigger(t => t.ForJob(RetrainJob.Key).WithIdentity(RetrainJob.ScheduleKey)
                .WithCronSchedule(options.Schedule, c => c.WithMisfireInstruction(CronTriggerMisfireInstruction.FireAndProceed)));
        }
        return quartz;
    }

    /// <summary>
    /// Runs the job now, through Quartz, so that it queues behind a run in progress instead of overlapping it.
    /// The task ends with this trigger's own outcome: a scheduled run that slipped in first is not mistaken for it.
    /// (The job store is in memory, so the promise travels in the job data as it is.)
    /// </summary>
    public static async Task<Task<RetrainOutcome>> TriggerNowAsync(ISchedulerFactory schedulers, CancellationToken cancellationToken)
    {
        var reply = new TaskCompletionSource<RetrainOutcome>(TaskCreationOptions.RunContinuationsAsynchronously);
        var scheduler = await schedulers.GetScheduler(cancellationToken).ConfigureAwait(false);
        await scheduler.TriggerJob(RetrainJob.Key, new JobDataMap { [RetrainJob.Force] = true, [RetrainJob.Reply] = reply }, cancellationToken).ConfigureAwait(false);
        return reply.Task;
    }
}
