using System.Collections.Concurrent;
using AnomalyMonitor.Core.Imaging;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Prometheus;

namespace AnomalyMonitor.Telemetry;

/// <summary>
/// Every metric the service exports, on its own registry so that several hosts in one process (tests)
/// do not share counters. Names follow Prometheus conventions: base units, _total, _seconds.
/// </summary>
public sealed class MonitorMetrics
{
    public MonitorMetrics() : this(null, null)
    {
    }

    public MonitorMetrics(IOptions<MetricsOptions>? options, ILogger<MonitorMetrics>? logger)
    {
        var log = logger ?? (ILogger)NullLogger.Instance;
        var max = options?.Value.MaxSources ?? new MetricsOptions().MaxSources;
        Sources = new LabelLimit(max, first => Log.SourceLabelsCapped(log, max, first));
        Registry = Metrics.NewCustomRegistry();
        var f = Metrics.WithCustomRegistry(Registry);
        Items = f.CreateCounter("anomaly_monitor_items_total", "Items judged, by source and outcome (normal, anomaly, rejected).", "source", "outcome");
        Rejected = f.CreateCounter("anomaly_monitor_rejected_total", "Inputs refused, by source and reason.", "source", "reason");
        Errors = f.CreateHistogram("anomaly_monitor_reconstruction_error", "Per-item reconstruction error.",
            new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(0.0005, 1.5, 24) });
        Scores = f.CreateHistogram("anomaly_monitor_score", "Per-item anomaly score: the reconstruction error, the latent score (about 1 for normals) or the combined score, as the model's detector says.",
            new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(0.0001, 2, 28) });
        Threshold = f.CreateGauge("anomaly_monitor_threshold", "Current anomaly threshold on the score's scale.");
        Mean = f.CreateGauge("anomaly_monitor_judge_mean", "Mean the judge uses, in its space: the window pooled with the model's calibration, or the calibration's own where the pooled threshold would fall below it (Judge:Floor), and alone until the window holds Judge:MinWindow scores.", "space");
        Std = f.CreateGauge("anomaly_monitor_judge_stddev", "Standard deviation the judge uses, in its space: the window pooled with the model's calibration, or the calibration's own where the pooled threshold would fall below it (Judge:Floor), and alone until the window holds Judge:MinWindow scores.", "space");
        WindowScores = f.CreateGauge("anomaly_monitor_judge_window_scores", "Scores in the judge's rolling window.");
        WindowHeld = f.CreateGauge("anomaly_monitor_judge_window_held", "1 while the judge's last block of accepted scores was refused (it crowded the top of the accepted range, as anomalies under the cut do): the window keeps its statistics and the store accepts nothing.");
        BandShare = f.CreateGauge("anomaly_monitor_judge_band_share", "Share of the last tested block of accepted scores in the top band of the accepted range; 0.25 for normals.");
        Blocks = f.CreateCounter("anomaly_monitor_judge_blocks_total", "Blocks of accepted scores tested by the judge's guard, by outcome (learned, refused).", "outcome");
        BatchDuration = f.CreateHistogram("anomaly_monitor_scoring_batch_duration_seconds", "Time to score one micro-batch.",
            new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(0.0002, 2, 14) });
        BatchSize = f.CreateHistogram("anomaly_monitor_scoring_batch_size", "Items per scored micro-batch.",
            new HistogramConfiguration { Buckets = [1, 2, 4, 8, 16, 32, 64, 128, 256] });
        SideBySide = f.CreateCounter("anomaly_monitor_scoring_side_by_side_total", "Micro-batches that began scoring on one lane while the other was still scoring a batch (Models:Lanes).");
        Latency = f.CreateHistogram("anomaly_monitor_end_to_end_latency_seconds", "From arrival to verdict and sinks, per item.",
            new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(0.0005, 2, 14) });
        QueueDepth = f.CreateGauge("anomaly_monitor_queue_depth", "Items waiting in the pipeline.");
        ModelVersion = f.CreateGauge("anomaly_monitor_model_version", "Version of the model judging (0 for a standalone model).");
        ModelCreated = f.CreateGauge("anomaly_monitor_model_created_timestamp_seconds", "Creation time of the model judging, Unix seconds.");
        ModelLoadFailures = f.CreateCounter("anomaly_monitor_model_load_failures_total", "Models that could not be loaded.");
        NormalStoreSize = f.CreateGauge("anomaly_monitor_normal_store_samples", "Accepted normal samples stored for retraining.");
        MqttConnected = f.CreateGauge("anomaly_monitor_mqtt_connected", "1 while the MQTT connection is up, by role (ingest, alerts).", "role");
        AlertsPublished = f.CreateCounter("anomaly_monitor_alerts_published_total", "Alerts delivered to the broker (QoS 1 acknowledged).", "kind");
        AlertsFailed = f.CreateCounter("anomaly_monitor_alerts_failed_total", "Alert publish attempts that failed (the alert stays in the outbox).");
        AlertsSuppressed = f.CreateCounter("anomaly_monitor_alerts_suppressed_total", "Anomalies not alerted, by reason (cooldown, rate_limit, drift).", "reason");
        OutboxSize = f.CreateGauge("anomaly_monitor_alert_outbox_size", "Alerts waiting in the outbox.");
        OutboxDropped = f.CreateCounter("anomaly_monitor_outbox_dropped_total", "Outbox messages dropped unsent, by kind: only a fleet scorer's sample batches, past Alerts:OutboxMaxSamples.", "kind");
        OutboxDropped.WithLabels("samples");
        OutboxDeadLetters = f.CreateCounter("anomaly_monitor_outbox_dead_letters_total", "Outbox messages the broker refused 5 times (an ACL, an invalid topic), set aside in outbox.db's dead_letters table, by kind.", "kind");
        OutboxDeadLetters.WithLabels("anomaly");
        DriftActive = f.CreateGauge("anomaly_monitor_drift_active", "1 while a sustained shift (most items anomalous) is in progress.");
        State = f.CreateGauge("anomaly_monitor_state", "1 for the current state: learning or judging.", "state");
        EvidenceItems = f.CreateGauge("anomaly_monitor_evidence_items", "Evidence records kept.");
        LiveTensors = f.CreateGauge("anomaly_monitor_torch_live_tensors", "TorchSharp tensors alive in the process; flat over time means no leak.");
        ModelFallback = f.CreateGauge("anomaly_monitor_model_fallback", "1 while judging with an older version because the current model could not be loaded.");
        Retrains = f.CreateCounter("anomaly_monitor_retrains_total", "Retraining runs by result (promoted, rejected, failed, skipped, cancelled).", "result");
        foreach (var r in RetrainResults) Retrains.WithLabels(r);
        RetrainDuration = f.CreateHistogram("anomaly_monitor_retrain_duration_seconds", "Wall time of retraining runs that trained a candidate.",
            new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(1, 2, 14) });
        RetrainLastLoss = f.CreateGauge("anomaly_monitor_retrain_last_loss", "Best validation loss of the last trained candidate.");
        RetrainRunning = f.CreateGauge("anomaly_monitor_retrain_running", "1 while a retraining run is in progress.");
        RetrainUnsuccessful = f.CreateGauge("anomaly_monitor_retrain_unsuccessful_in_a_row", "Retraining runs in a row that were rejected or failed (0 after a promotion).");
        GateMeanError = f.CreateGauge("anomaly_monitor_retrain_gate_mean_error", "Mean held-out error in the last gate, by model (candidate, current).", "model");
        LastPromotion = f.CreateGauge("anomaly_monitor_last_promotion_timestamp_seconds", "When a model was last promoted or rolled back to, Unix seconds.");
        Rollbacks = f.CreateCounter("anomaly_monitor_model_rollbacks_total", "Operator rollbacks to an earlier version.");
        InstanceInfo = f.CreateGauge("anomaly_monitor_instance_info", "Always 1: this service's fleet instance name and role (standalone, scorer, trainer).", "fleet_instance", "role");
        FleetModelsInstalled = f.CreateCounter("anomaly_monitor_fleet_models_installed_total", "Models received from the fleet's trainer and installed (scorers).");
        FleetModelsRefused = f.CreateCounter("anomaly_monitor_fleet_models_refused_total", "Fleet model messages refused, by reason (corrupt, truncated, checksum, shape, format, invalid); the current model stays.", "reason");
        // Every reason from the start, at zero: a dashboard sees "none refused", not "no data".
        foreach (var reason in new[] { "corrupt", "truncated", "checksum", "shape", "format", "invalid", "too_large", "storage" }) FleetModelsRefused.WithLabels(reason);
        FleetModelsPublished = f.CreateCounter("anomaly_monitor_fleet_models_published_total", "Model versions queued for the fleet's retained model topic (trainer).");
        ScoreBusy = f.CreateCounter("anomaly_monitor_api_score_busy_total", "POST /api/score requests answered 503 because Api:MaxScoreInFlightBytes of bodies were already waiting.");
        Feedback = f.CreateCounter("anomaly_monitor_feedback_total", "Operator feedback by channel (http, mqtt), label and result (applied, unknown_id, invalid).", "channel", "label", "result");
        ConfirmedAnomalies = f.CreateGauge("anomaly_monitor_confirmed_anomalies", "Items operators confirmed as anomalies (used by the retraining gate).");
        FolderSkipped = f.CreateCounter("anomaly_monitor_folder_skipped_total", "Watched-folder entries not taken, by kind (fifo, socket, device, directory; vanished: gone between claim and read).", "kind");
        StorageDegraded = f.CreateGauge("anomaly_monitor_storage_degraded", "1 while a durable store cannot write (outbox, normal_store, judge_state, quarantine, held).", "store");
        // Every store starts at 0, so that dashboards and rules see the series before the first failure.
        foreach (var store in StorageStores) StorageDegraded.WithLabels(store).Set(0);
        StorageErrors = f.CreateCounter("anomaly_monitor_storage_errors_total", "Failed writes by store; items wait and are retried, evidence is skipped.", "store");
        FolderRenamed = f.CreateCounter("anomaly_monitor_folder_renamed_total", "Watched-folder entries whose name was not valid UTF-8, renamed with %XX escapes so that they could be taken.");
        RetentionDeletedFiles = f.CreateCounter("anomaly_monitor_retention_deleted_files_total", "Kept inputs deleted past Ingest:Retention's age or size, by folder (processed, rejected, quarantine).", "folder");
        RetentionDeletedBytes = f.CreateCounter("anomaly_monitor_retention_deleted_bytes_total", "Bytes of kept inputs deleted past Ingest:Retention's age or size, by folder.", "folder");
        RetentionKeptBytes = f.CreateGauge("anomaly_monitor_retention_kept_bytes", "Bytes each folder of kept inputs held after its last retention pass, by folder.", "folder");
        SourceErrors = f.CreateCounter("anomaly_monitor_source_errors_total", "Passes of a source's own loop that failed and were retried (a watched folder that cannot be listed), by source.", "source");
        // Each series exists from the start, so that rules and dashboards see 0 before the first event.
        SourceErrors.WithLabels("folder");
        foreach (var folder in new[] { "processed", "rejected", "quarantine" })
        {
            RetentionDeletedFiles.WithLabels(folder);
            RetentionDeletedBytes.WithLabels(folder);
            RetentionKeptBytes.WithLabels(folder);
        }
        MqttSessionTakeovers = f.CreateCounter("anomaly_monitor_mqtt_session_takeovers_total", "MQTT sessions the broker took away soon after a connect (another client with the same client id), by role.", "role");
        Up = f.CreateGauge("anomaly_monitor_up", "1 while the service runs.");
        Up.Set(1);
    }

    /// <summary>The "source" label's values: capped, because senders choose them.</summary>
    public LabelLimit Sources { get; }

    private readonly ConcurrentDictionary<(string Source, string Outcome), Counter.Child> _items = new();

    /// <summary>One item's outcome (normal, anomaly, rejected) under its source, or "other" past Metrics:MaxSources.</summary>
    public void CountItem(string source, string outcome) =>
        _items.GetOrAdd((Sources.Of(source), outcome), static (key, items) => items.WithLabels(key.Source, key.Outcome), Items).Inc();

    /// <summary>A refused input: counted by reason and as a rejected item.</summary>
    public void CountRejected(string source, RejectReason reason)
    {
        Rejected.WithLabels(Sources.Of(source), reason.Name()).Inc();
        CountItem(source, "rejected");
    }

    /// <summary>The stores StorageHealth reports on (evidence is counted in the errors only: it never holds an item).</summary>
    public static readonly string[] StorageStores = ["outbox", "normal_store", "judge_state", "quarantine", "held"];

    public static readonly string[] RetrainResults = ["promoted", "rejected", "failed", "skipped", "cancelled"];

    public CollectorRegistry Registry { get; }
    public Gauge ModelFallback { get; }
    public Counter Retrains { get; }
    public Histogram RetrainDuration { get; }
    public Gauge RetrainLastLoss { get; }
    public Gauge RetrainRunning { get; }
    public Gauge RetrainUnsuccessful { get; }
    public Gauge GateMeanError { get; }
    public Gauge LastPromotion { get; }
    public Counter Rollbacks { get; }
    public Gauge InstanceInfo { get; }
    public Counter FleetModelsInstalled { get; }
    public Counter FleetModelsRefused { get; }
    public Counter FleetModelsPublished { get; }
    public Counter Feedback { get; }
    public Counter ScoreBusy { get; }
    public Gauge ConfirmedAnomalies { get; }
    public Counter Items { get; }
    public Counter Rejected { get; }
    public Histogram Errors { get; }
    public Histogram Scores { get; }
    public Gauge Threshold { get; }
    public Gauge Mean { get; }
    public Gauge Std { get; }
    public Gauge WindowScores { get; }
    public Gauge WindowHeld { get; }
    public Gauge BandShare { get; }
    public Counter Blocks { get; }
    public Histogram BatchDuration { get; }
    public Histogram BatchSize { get; }
    public Counter SideBySide { get; }
    public Histogram Latency { get; }
    public Gauge QueueDepth { get; }
    public Gauge ModelVersion { get; }
    public Gauge ModelCreated { get; }
    public Counter ModelLoadFailures { get; }
    public Gauge NormalStoreSize { get; }
    public Gauge MqttConnected { get; }
    public Counter AlertsPublished { get; }
    public Counter AlertsFailed { get; }
    public Counter AlertsSuppressed { get; }
    public Gauge OutboxSize { get; }
    public Counter OutboxDropped { get; }
    public Counter OutboxDeadLetters { get; }
    public Gauge DriftActive { get; }
    public Gauge State { get; }
    public Gauge EvidenceItems { get; }
    public Gauge LiveTensors { get; }
    public Gauge Up { get; }
    public Counter FolderSkipped { get; }
    public Counter MqttSessionTakeovers { get; }
    public Gauge StorageDegraded { get; }
    public Counter StorageErrors { get; }

    public Counter SourceErrors { get; }
    public Counter FolderRenamed { get; }
    public Counter RetentionDeletedFiles { get; }
    public Counter RetentionDeletedBytes { get; }
    public Gauge RetentionKeptBytes { get; }
}
