using Quartz;

namespace AnomalyMonitor.Retraining;

/// <summary>The Quartz job: one retraining run. Never concurrent with itself, whoever triggers it.</summary>
public sealed class RetrainJob(IRetrainRunner runner) : IJob
{
    public static readonly JobKey Key = new("retrain", "anomaly-monitor");
    public static readonly TriggerKey ScheduleKey = new("retrain-schedule", "anomaly-monitor");
    /// <summary>Job data set by on-demand runs: train even with fewer than Retrain:MinNewSamples new samples.</summary>
    public const string Force = "force";

    public async ValueTask Execute(IJobExecutionContext context, CancellationToken cancellationToken)
    {
        context.Result = await runner.RunAsync(context.MergedJobDataMap.ContainsKey(Force), cancellationToken).ConfigureAwait(false);
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

    /// <summary>Runs the job now, through Quartz, so that it queues behind a run in progress instead of overlapping it.</summary>
    public static async Task TriggerNowAsync(ISchedulerFactory schedulers, CancellationToken cancellationToken)
    {
        var scheduler = await schedulers.GetScheduler(cancellationToken).ConfigureAwait(false);
        await scheduler.TriggerJob(RetrainJob.Key, new JobDataMap { [RetrainJob.Force] = true }, cancellationToken).ConfigureAwait(false);
    }
}
