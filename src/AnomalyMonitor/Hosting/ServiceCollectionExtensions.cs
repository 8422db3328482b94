using AnomalyMonitor.Alerts;
using AnomalyMonitor.Evidence;
using AnomalyMonitor.Feedback;
using AnomalyMonitor.Fleet;
using AnomalyMonitor.Ingest;
using AnomalyMonitor.Mqtt;
using AnomalyMonitor.Pipeline;
using AnomalyMonitor.Pipeline.Scoring;
using AnomalyMonitor.Registry;
using AnomalyMonitor.Retraining;
using AnomalyMonitor.Samples;
using AnomalyMonitor.Sinks;
using AnomalyMonitor.State;
using AnomalyMonitor.Telemetry;
using AnomalyMonitor.Web;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Quartz;

namespace AnomalyMonitor.Hosting;

/// <summary>One method per area, so that the host's composition reads as a list.</summary>
public static class ServiceCollectionExtensions
{
    public static IServiceCollection AddMonitorOptions(this IServiceCollection services, IConfiguration configuration)
    {
        services.Section<ModelsOptions, ModelsOptionsValidator>(configuration, ModelsOptions.Section);
        services.Section<IngestOptions, IngestOptionsValidator>(configuration, IngestOptions.Section);
        services.Section<MqttOptions, MqttOptionsValidator>(configuration, MqttOptions.Section);
        services.Section<PipelineOptions, PipelineOptionsValidator>(configuration, PipelineOptions.Section);
        services.Section<JudgeOptions, JudgeOptionsValidator>(configuration, JudgeOptions.Section);
        services.Section<AlertsOptions, AlertsOptionsValidator>(configuration, AlertsOptions.Section);
        services.Section<EvidenceOptions, EvidenceOptionsValidator>(configuration, EvidenceOptions.Section);
        services.Section<NormalStoreOptions, NormalStoreOptionsValidator>(configuration, NormalStoreOptions.Section);
        services.Section<ServiceOptions, ServiceOptionsValidator>(configuration, ServiceOptions.Section);
        services.Section<WebOptions, WebOptionsValidator>(configuration, WebOptions.Section);
        services.Section<BootstrapOptions, BootstrapOptionsValidator>(configuration, BootstrapOptions.Section);
        services.Section<RetrainOptions, RetrainOptionsValidator>(configuration, RetrainOptions.Section);
        services.Section<ApiOptions, ApiOptionsValidator>(configuration, ApiOptions.Section);
        services.Section<FeedbackOptions, FeedbackOptionsValidator>(configuration, FeedbackOptions.Section);
        services.Section<MetricsOptions, MetricsOptionsValidator>(configuration, MetricsOptions.Section);
        services.Section<FleetOptions, FleetOptionsValidator>(configuration, FleetOptions.Section);
        // PostConfigure rather than a default in the class: binding appends array items to a default list.
        services.PostConfigure<IngestOptions>(o =>
        {
            if (o.Mqtt.Topics.Count == 0) o.Mqtt.Topics.Add("anomaly-monitor/images/#");
        });
        return services;
    }

    public static IServiceCollection AddMonitorCore(this IServiceCollection services, PathResolver paths, TimeProvider time)
    {
        services.AddSingleton(paths);
        services.AddSingleton(time);
        services.AddSingleton<MonitorMetrics>();
        services.AddSingleton<ModelRegistry>();
        services.AddSingleton<ModelHolder>();
        services.AddSingleton<Promotion>();
        services.AddSingleton<FeedbackService>();
        services.AddSingleton<ApiToken>();
        services.AddSingleton<JudgeStateStore>();
        services.AddSingleton<NormalSampleStore>();
        services.AddSingleton<EvidenceStore>();
        services.AddSingleton<ScoreHistory>();
        services.AddSingleton<StorageHealth>();
        services.AddSingleton<DurableWrite>();
        services.AddSingleton<Quarantine>();
        services.AddSingleton(sp => new ItemQueue(sp.GetRequiredService<IOptions<PipelineOptions>>().Value.QueueCapacity));
        services.AddSingleton<Intake>();
        return services;
    }

    /// <summary>The hosted services, in start order; they stop in reverse: retraining first, then the pipeline (which drains), the sources, the broker last.</summary>
    public static IServiceCollection AddMonitorServices(this IServiceCollection services, IConfiguration configuration, TimeProvider time)
    {
        services.AddSingleton(sp => new MqttConnection(sp.GetRequiredService<IOptions<MqttOptions>>().Value, sp.GetRequiredService<IOptions<FleetOptions>>().Value.EffectiveInstance));
        services.AddSingleton<EmbeddedBroker>();
        services.AddHostedService(sp => sp.GetRequiredService<EmbeddedBroker>());
        services.AddSingleton<AlertOutbox>();
        services.AddSingleton<StormControl>();
        // The sinks, in registration order: the first four run side by side, the alert sink after them (it names the evidence files).
        services.AddSingleton<IVerdictSink, MetricsSink>();
        services.AddSingleton<IVerdictSink, ScoreHistorySink>();
        services.AddSingleton<IVerdictSink, EvidenceSink>();
        services.AddSingleton<IVerdictSink, NormalStoreSink>();
        services.AddSingleton<IVerdictSink, AlertSink>();
        services.AddSingleton<SinkStage>();
        services.AddSingleton<AlertPublisher>();
        services.AddHostedService(sp => sp.GetRequiredService<AlertPublisher>());
        // The sources, one line each (a hosted one runs its own loop; the HTTP one answers requests). Registered
        // before the pipeline, so they stop after it: what it drains at shutdown is still acknowledged or moved.
        services.AddIngestSource<FolderSource>(hosted: true);
        services.AddIngestSource<MqttSource>(hosted: true);
        services.AddIngestSource<HttpScoreSource>(hosted: false);
        // Before the pipeline, so the trainer's publisher hears of the first model it installs.
        services.AddSingleton<FleetModelPublisher>();
        services.AddHostedService(sp => sp.GetRequiredService<FleetModelPublisher>());
        services.AddSingleton<Bootstrapper>();
        services.TryAddSingleton<IBatchScorerFactory, TorchBatchScorerFactory>();
        services.AddSingleton(sp =>
        {
            var o = sp.GetRequiredService<IOptions<PipelineOptions>>().Value;
            // Enough that no stage waits for a buffer in steady flow: each decode worker fills one and may wait to hand on
            // another, two wait for the scoring thread, one is scored, and the sinks hold up to five.
            return new BatchPool(2 * Math.Max(1, o.DecodeWorkers) + 8, o.MaxBatchSize);
        });
        services.AddSingleton<DecodeStage>();
        services.AddSingleton<ScoringStage>();
        services.AddSingleton<PipelineService>();
        services.AddHostedService(sp => sp.GetRequiredService<PipelineService>());
        services.AddSingleton<Retrainer>();
        services.AddSingleton<IRetrainRunner>(sp => sp.GetRequiredService<Retrainer>());
        var retrain = configuration.GetSection(RetrainOptions.Section).Get<RetrainOptions>() ?? new RetrainOptions();
        services.AddQuartz(q => q.UseTimeProvider(time).AddRetrainJob(retrain));
        // Registered after the pipeline so that it stops first: a retraining run is cancelled before scoring stops.
        services.AddQuartzHostedService(o => o.WaitForJobsToComplete = true);
        services.AddSingleton<FeedbackListener>();
        services.AddHostedService(sp => sp.GetRequiredService<FeedbackListener>());
        // Each runs only in its role: the scorers' model listener, the trainer's samples listener.
        services.AddSingleton<FleetModelListener>();
        services.AddHostedService(sp => sp.GetRequiredService<FleetModelListener>());
        services.AddSingleton<FleetSampleListener>();
        services.AddHostedService(sp => sp.GetRequiredService<FleetSampleListener>());
        // UseSystemd() registers the notifier only under systemd; outside it the notifier is simply disabled.
        services.TryAddSingleton<Microsoft.Extensions.Hosting.Systemd.ISystemdNotifier, Microsoft.Extensions.Hosting.Systemd.SystemdNotifier>();
        services.AddSingleton<RetentionService>();
        services.AddHostedService(sp => sp.GetRequiredService<RetentionService>());
        services.AddHostedService<WatchdogService>();
        return services;
    }

    /// <summary>Registers a source: as itself, as an <see cref="IIngestSource"/> (status, readiness), and as a hosted service if it runs a loop.</summary>
    public static IServiceCollection AddIngestSource<TSource>(this IServiceCollection services, bool hosted)
        where TSource : class, IIngestSource
    {
        services.AddSingleton<TSource>();
        services.AddSingleton<IIngestSource>(sp => sp.GetRequiredService<TSource>());
        if (hosted) services.AddSingleton<IHostedService>(sp => (IHostedService)sp.GetRequiredService<TSource>());
        return services;
    }

    private static void Section<TOptions, TValidator>(this IServiceCollection services, IConfiguration configuration, string section)
        where TOptions : class
        where TValidator : class, IValidateOptions<TOptions>
    {
        services.AddOptions<TOptions>().Bind(configuration.GetSection(section)).ValidateOnStart();
        services.AddSingleton<IValidateOptions<TOptions>, TValidator>();
    }
}
