using AnomalyMonitor.Core.Thresholds;

namespace AnomalyMonitor.Hosting;

// One sealed class per configuration section (Quartz.NET style). Intervals are TimeSpans ("00:00:05").

public sealed class ModelsOptions
{
    public const string Section = "Models";
    /// <summary>The model directory: a model (manifest.json) or a registry whose "current" names one.</summary>
    public string Path { get; set; } = "models";
    public string Device { get; set; } = "auto";
    /// <summary>Threads libtorch may use for scoring; 0 keeps libtorch's default (all cores).</summary>
    public int Threads { get; set; }
    /// <summary>Versions v&lt;N&gt; kept in the registry (the newest ones); the current version is always kept.</summary>
    public int KeepVersions { get; set; } = 5;
}

public sealed class FolderSourceOptions
{
    public bool Enabled { get; set; } = true;
    public string Path { get; set; } = "inbox";
    /// <summary>A full rescan catches what the file watcher dropped.</summary>
    public TimeSpan RescanInterval { get; set; } = TimeSpan.FromSeconds(5);
    /// <summary>A file is taken once its size has not changed for this long.</summary>
    public TimeSpan StableFor { get; set; } = TimeSpan.FromMilliseconds(300);
    /// <summary>Delete judged files instead of moving them to processed/.</summary>
    public bool DeleteProcessed { get; set; }
    public long MaxFileBytes { get; set; } = 64L * 1024 * 1024;
}

public sealed class MqttSourceOptions
{
    public bool Enabled { get; set; } = true;
    public List<string> Topics { get; set; } = [];
    /// <summary>How long the broker keeps this subscriber's session (and its queued messages) while it is away.</summary>
    public TimeSpan SessionExpiry { get; set; } = TimeSpan.FromDays(7);
    public long MaxPayloadBytes { get; set; } = 64L * 1024 * 1024;
}

public sealed class IngestOptions
{
    public const string Section = "Ingest";
    public FolderSourceOptions Folder { get; set; } = new();
    public MqttSourceOptions Mqtt { get; set; } = new();
}

public sealed class EmbeddedBrokerOptions
{
    public int Port { get; set; } = 1883;
    /// <summary>Loopback by default: an embedded broker with no authentication must not face the network.</summary>
    public string Address { get; set; } = "127.0.0.1";
    /// <summary>Messages queued for one client before the oldest are dropped (MQTTnet's rule); large, so that a slow subscriber loses nothing.</summary>
    public int MaxPendingMessages { get; set; } = 100_000;
}

public sealed class MqttOptions
{
    public const string Section = "Mqtt";
    /// <summary>Empty: host the embedded broker. Otherwise host:port or mqtts://host:port.</summary>
    public string Broker { get; set; } = "";
    public string ClientId { get; set; } = "anomaly-monitor";
    public string? Username { get; set; }
    public string? Password { get; set; }
    /// <summary>File holding the password (systemd LoadCredential puts it in $CREDENTIALS_DIRECTORY).</summary>
    public string? PasswordFile { get; set; }
    public bool AllowUntrustedCertificates { get; set; }
    public TimeSpan KeepAlive { get; set; } = TimeSpan.FromSeconds(15);
    public TimeSpan ReconnectMin { get; set; } = TimeSpan.FromSeconds(1);
    public TimeSpan ReconnectMax { get; set; } = TimeSpan.FromSeconds(30);
    public EmbeddedBrokerOptions Embedded { get; set; } = new();
}

public sealed class PipelineOptions
{
    public const string Section = "Pipeline";
    /// <summary>Items waiting to be decoded; when full, sources wait (back-pressure) and memory stays capped.</summary>
    public int QueueCapacity { get; set; } = 1024;
    public int DecodeWorkers { get; set; } = 2;
    public int MaxBatchSize { get; set; } = 32;
    public TimeSpan MaxBatchWait { get; set; } = TimeSpan.FromMilliseconds(2);
    /// <summary>An item the pipeline hands back (a failure, not a shutdown) is offered again after this, doubling each time...</summary>
    public TimeSpan RetryDelay { get; set; } = TimeSpan.FromSeconds(1);
    /// <summary>...up to this...</summary>
    public TimeSpan RetryMaxDelay { get; set; } = TimeSpan.FromMinutes(1);
    /// <summary>...and after this many attempts it is rejected (reason "failed") rather than retried for ever.</summary>
    public int MaxAttempts { get; set; } = 10;
    /// <summary>Resize images of another size to the model input. Off by default: a wrong size usually means a misconfigured sender, so it is rejected (wrong_dimensions).</summary>
    public bool AllowResize { get; set; }
}

public sealed class JudgeOptions
{
    public const string Section = "Judge";
    public double K { get; set; } = 3;
    public bool TwoSided { get; set; }
    /// <summary>
    /// Empty: the rolling mean + K·σ (|z| > K with TwoSided) in Space. Otherwise a rule with its own
    /// parameters, as `--threshold` takes it: "conformal:alpha=0.01", "spot:q=1e-4", "percentile:p=99.5",
    /// "mean-ksigma:k=3,log".
    /// </summary>
    public string Rule { get; set; } = "";
    /// <summary>Log (default): statistics of ln(score), for right-skewed errors. Linear: of the scores themselves.</summary>
    public StatisticSpace Space { get; set; } = StatisticSpace.Log;
    public int Window { get; set; } = 5000;
    /// <summary>Until the window holds this many scores, the model's calibration statistics judge.</summary>
    public int MinWindow { get; set; } = 200;
    /// <summary>Correct the window's mean and σ for being fed only scores below its own threshold.</summary>
    public bool TruncationCorrection { get; set; } = true;
    /// <summary>Items below mean + Accept·σ enter the normal-sample store.</summary>
    public double Accept { get; set; } = 1;
    public TimeSpan SaveInterval { get; set; } = TimeSpan.FromSeconds(30);
    public DriftOptions Drift { get; set; } = new();
}

public sealed class DriftOptions
{
    /// <summary>A level shift is declared when more than this fraction of items are anomalous...</summary>
    public double Fraction { get; set; } = 0.5;
    /// <summary>...for longer than this...</summary>
    public TimeSpan Duration { get; set; } = TimeSpan.FromMinutes(5);
    /// <summary>...counting at least this many items.</summary>
    public int MinItems { get; set; } = 50;
}

public sealed class AlertsOptions
{
    public const string Section = "Alerts";
    public string Topic { get; set; } = "anomaly-monitor/alerts";
    public string StatusTopic { get; set; } = "anomaly-monitor/status";
    /// <summary>After an alert from a source, further anomalies from it within this time are counted, not published.</summary>
    public TimeSpan Cooldown { get; set; } = TimeSpan.Zero;
    public int MaxPerMinute { get; set; } = 600;
    public TimeSpan RetryInterval { get; set; } = TimeSpan.FromSeconds(2);
}

public sealed class EvidenceOptions
{
    public const string Section = "Evidence";
    public string Path { get; set; } = "evidence";
    public int MaxCount { get; set; } = 10_000;
    public TimeSpan MaxAge { get; set; } = TimeSpan.FromDays(30);
}

public sealed class NormalStoreOptions
{
    public const string Section = "NormalStore";
    public string Path { get; set; } = "state/normals.db";
    public int Capacity { get; set; } = 20_000;
}

public sealed class WebOptions
{
    public const string Section = "Web";
    public string Urls { get; set; } = "http://127.0.0.1:9464";
}

public sealed class BootstrapOptions
{
    public const string Section = "Bootstrap";
    /// <summary>Train the first model from this data at start (IDX/npz/folder) when there is no model.</summary>
    public string? Data { get; set; }
    public string? NormalClass { get; set; }
    /// <summary>Otherwise, learn from the first N items received.</summary>
    public int Samples { get; set; } = 1000;
    public string Architecture { get; set; } = "conv";
    public string? Shape { get; set; } = "28x28x1";
    public int Epochs { get; set; } = 20;
    /// <summary>Optimizer steps the first model may take at least: the first thousand items are only eight steps an epoch.</summary>
    public int MinSteps { get; set; } = 3000;
    public int? Seed { get; set; }
}

public sealed class ServiceOptions
{
    public const string Section = "Service";
    /// <summary>Where state lives (judge window, outbox). Relative paths in other sections resolve against it under systemd.</summary>
    public string StateDirectory { get; set; } = "state";
    public TimeSpan ShutdownTimeout { get; set; } = TimeSpan.FromSeconds(20);
    /// <summary>fsync every commit of the outbox and the sample store (SQLite synchronous=FULL), so that an acknowledged item's record survives a power loss, not only a crash.</summary>
    public bool SyncEveryCommit { get; set; }
}

public sealed class RetrainOptions
{
    public const string Section = "Retrain";
    public bool Enabled { get; set; } = true;
    /// <summary>Quartz cron expression (seconds first): every 6 hours by default.</summary>
    public string Schedule { get; set; } = "0 0 0/6 * * ?";
    /// <summary>A scheduled run trains only when at least this many samples arrived since the last run.</summary>
    public int MinNewSamples { get; set; } = 500;
    /// <summary>No run trains on fewer samples than this (on-demand runs included).</summary>
    public int MinSamples { get; set; } = 200;
    /// <summary>Train only on samples older than this, so an unnoticed incident has time to be flagged and excluded.</summary>
    public TimeSpan QuarantineAge { get; set; } = TimeSpan.Zero;
    /// <summary>Fraction of the store held out (the same samples every run) to compare candidate and current model.</summary>
    public double Holdout { get; set; } = 0.1;
    /// <summary>Promote only if the candidate's mean held-out error is at most (1 + Tolerance) times the current model's.</summary>
    public double Tolerance { get; set; } = 0.05;
    /// <summary>...and, with enough confirmed anomalies, its AUROC is at most this much below the current model's.</summary>
    public double AurocTolerance { get; set; } = 0.01;
    public int MinConfirmedAnomalies { get; set; } = 5;
    /// <summary>Torch threads for training, so that scoring keeps the rest of the cores.</summary>
    public int Threads { get; set; } = 1;
    public int Epochs { get; set; } = 20;
    /// <summary>Optimizer steps a run may take at least, whatever the number of samples; early stopping still ends a converged run.</summary>
    public int MinSteps { get; set; } = 3000;
    /// <summary>Epochs without a better validation loss before stopping early; 0 trains all Epochs.</summary>
    public int Patience { get; set; } = 5;
    public int BatchSize { get; set; } = 128;
    public int? Seed { get; set; }
}

public sealed class ApiOptions
{
    public const string Section = "Api";
    /// <summary>Bearer token for feedback, retraining and rollback. Prefer TokenFile (or the environment) over a token in a file under /etc.</summary>
    public string? Token { get; set; }
    /// <summary>File holding the token; relative paths are looked up in systemd's credentials directory. Neither set: one is generated in the state directory.</summary>
    public string? TokenFile { get; set; }
}

public sealed class FeedbackOptions
{
    public const string Section = "Feedback";
    /// <summary>Operators publish {"id": "...", "label": "normal"|"anomaly"} here; empty turns the topic off.</summary>
    public string Topic { get; set; } = "anomaly-monitor/feedback";
}
