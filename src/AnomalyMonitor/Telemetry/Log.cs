using Microsoft.Extensions.Logging;

namespace AnomalyMonitor.Telemetry;

/// <summary>All of the service's log messages, with stable event ids and structured fields.</summary>
internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Information, "Model {Directory} loaded: {Architecture} {Shape}, version {Version}, on {Device}")]
    public static partial void ModelLoaded(ILogger logger, string directory, string architecture, string shape, int version, string device);

    [LoggerMessage(2, LogLevel.Information, "State: {State}")]
    public static partial void StateChanged(ILogger logger, string state);

    [LoggerMessage(3, LogLevel.Warning, "Rejected {Item} from {Source}: {Reason}: {Detail}")]
    public static partial void Rejected(ILogger logger, string item, string source, string reason, string detail);

    [LoggerMessage(45, LogLevel.Warning, "Rejected {Count} more inputs in {Seconds} s than were logged one by one ({Reasons}; the first: {First}); each is counted in anomaly_monitor_rejected_total and kept with its reason")]
    public static partial void RejectionsHeldBack(ILogger logger, long count, double seconds, string reasons, string first);

    [LoggerMessage(4, LogLevel.Information, "Anomaly {Item} from {Source}: score {Score:G4} > threshold {Threshold:G4} (z {Z:F2})")]
    public static partial void Anomaly(ILogger logger, string item, string source, double score, double threshold, double z);

    [LoggerMessage(5, LogLevel.Error, "Pipeline error on a batch of {Count} item(s); they are handed back")]
    public static partial void BatchFailed(ILogger logger, Exception exception, int count);

    [LoggerMessage(6, LogLevel.Information, "MQTT {Role} connected to {Broker}")]
    public static partial void MqttConnected(ILogger logger, string role, string broker);

    [LoggerMessage(7, LogLevel.Warning, "MQTT {Role} disconnected from {Broker}: {Reason}; retrying")]
    public static partial void MqttDisconnected(ILogger logger, string role, string broker, string reason);

    [LoggerMessage(8, LogLevel.Information, "Embedded MQTT broker listening on {Address}:{Port}")]
    public static partial void BrokerStarted(ILogger logger, string address, int port);

    [LoggerMessage(9, LogLevel.Warning, "Alert publish failed, {Pending} alert(s) kept in the outbox: {Reason}")]
    public static partial void AlertPublishFailed(ILogger logger, long pending, string reason);

    [LoggerMessage(10, LogLevel.Warning, "Sustained shift: {Fraction:P0} of {Count} items anomalous for {Duration}; one drift alert sent, individual alerts suppressed")]
    public static partial void DriftStarted(ILogger logger, double fraction, int count, TimeSpan duration);

    [LoggerMessage(11, LogLevel.Information, "Drift cleared: {Reason}")]
    public static partial void DriftCleared(ILogger logger, string reason);

    [LoggerMessage(12, LogLevel.Information, "Judge window restored: {Count} scores")]
    public static partial void WindowRestored(ILogger logger, int count);

    [LoggerMessage(13, LogLevel.Information, "Learning: {Held}/{Needed} items collected for the first model")]
    public static partial void LearningProgress(ILogger logger, int held, int needed);

    [LoggerMessage(14, LogLevel.Information, "Training the first model from {Count} images ({Source})")]
    public static partial void BootstrapTraining(ILogger logger, int count, string source);

    [LoggerMessage(40, LogLevel.Warning, "The first model's training diverged ({Reason}); it keeps the weights of epoch {BestEpoch}, the last with a finite loss")]
    public static partial void BootstrapDiverged(ILogger logger, string reason, int bestEpoch);

    [LoggerMessage(15, LogLevel.Information, "Folder {Folder}: re-judging {Count} file(s) left in processing/ by an earlier run")]
    public static partial void RecoveringFiles(ILogger logger, string folder, int count);

    [LoggerMessage(16, LogLevel.Warning, "Sink {Sink} failed for {Item}: {Reason}")]
    public static partial void SinkFailed(ILogger logger, string sink, string item, string reason);

    [LoggerMessage(17, LogLevel.Error, "Model could not be loaded: {Reason}")]
    public static partial void ModelLoadFailed(ILogger logger, string reason);

    [LoggerMessage(18, LogLevel.Warning, "Folder source error on {Path}: {Reason}")]
    public static partial void FolderError(ILogger logger, string path, string reason);

    [LoggerMessage(19, LogLevel.Information, "Shutting down: {Pending} item(s) still queued will be handed back")]
    public static partial void ShuttingDown(ILogger logger, int pending);

    [LoggerMessage(20, LogLevel.Error, "The current model v{Current} could not be loaded; judging with v{Fallback}, the newest valid version, instead. Roll back or fix v{Current}.")]
    public static partial void ModelFallback(ILogger logger, int current, int fallback);

    [LoggerMessage(21, LogLevel.Information, "Retraining: {Result} - {Reason}")]
    public static partial void RetrainOutcome(ILogger logger, string result, string reason);

    [LoggerMessage(22, LogLevel.Information, "Retraining v{Version} on {Count} samples ({Holdout} held out) with {Threads} thread(s)")]
    public static partial void RetrainStarted(ILogger logger, int version, int count, int holdout, int threads);

    [LoggerMessage(23, LogLevel.Error, "Retraining failed: {Reason}")]
    public static partial void RetrainFailed(ILogger logger, Exception exception, string reason);

    [LoggerMessage(24, LogLevel.Warning, "Rolled back to v{Version} (was v{Previous})")]
    public static partial void RolledBack(ILogger logger, int version, int previous);

    [LoggerMessage(25, LogLevel.Information, "Feedback {Label} for {Item} via {Channel}: {Result}")]
    public static partial void FeedbackApplied(ILogger logger, string label, string item, string channel, string result);

    [LoggerMessage(27, LogLevel.Warning, "Metrics: more than {Max} distinct sources (first over the limit: {Source}); further sources are counted as source=\"other\" (Metrics:MaxSources)")]
    public static partial void SourceLabelsCapped(ILogger logger, int max, string source);

    [LoggerMessage(28, LogLevel.Warning, "Folder: {Path} is a {Kind}, not a regular file; left where it is")]
    public static partial void FolderEntrySkipped(ILogger logger, string path, string kind);

    [LoggerMessage(29, LogLevel.Error, "Storage degraded: {Store} cannot write ({Reason}); items wait and are retried, /readyz answers 503")]
    public static partial void StorageDegraded(ILogger logger, string store, string reason);

    [LoggerMessage(30, LogLevel.Information, "Storage recovered: {Store} writes again")]
    public static partial void StorageRecovered(ILogger logger, string store);

    [LoggerMessage(39, LogLevel.Warning, "Evidence skipped for {Count} anomalies since the last report (the latest {Id}): the evidence writer is {Max} records behind; verdicts and alerts go on without it, and anomaly_monitor_storage_errors_total{{store=\"evidence\"}} counts each")]
    public static partial void EvidenceSkipped(ILogger logger, long count, string id, int max);

    [LoggerMessage(38, LogLevel.Warning, "The model in {Directory}: {Warning}")]
    public static partial void RuleMisfitsCalibration(ILogger logger, string directory, string warning);

    [LoggerMessage(31, LogLevel.Error, "Judge:Rule {Rule} cannot judge with the model in {Directory} ({Reason}); judging with the rolling mean + k·sigma instead")]
    public static partial void JudgeRuleUnavailable(ILogger logger, string rule, string directory, string reason);

    [LoggerMessage(32, LogLevel.Error, "MQTT {Role}: the broker took this session away {Count} times in a row, soon after each connect: another client uses the client id {ClientId} (a second instance with the same Mqtt:ClientId / Fleet:Instance, or an old one still running). Backing off so that one of them keeps it; give each instance its own Fleet:Instance")]
    public static partial void MqttSessionTakenOver(ILogger logger, string role, string clientId, int count);

    [LoggerMessage(26, LogLevel.Warning, "API token generated in {Path}: send it as 'Authorization: Bearer <token>' for feedback, retraining and rollback")]
    public static partial void TokenGenerated(ILogger logger, string path);

    [LoggerMessage(33, LogLevel.Warning, "Refused the fleet model message on {Topic} ({Reason}): {Detail}; the current model v{Current} stays")]
    public static partial void FleetModelRefused(ILogger logger, string topic, string reason, string detail, int current);

    [LoggerMessage(34, LogLevel.Information, "Fleet model v{Version} from {Instance} installed (was v{Previous})")]
    public static partial void FleetModelInstalled(ILogger logger, int version, string instance, int previous);

    [LoggerMessage(35, LogLevel.Information, "Published model v{Version} to the fleet on {Topic} (retained)")]
    public static partial void FleetModelPublished(ILogger logger, int version, string topic);

    [LoggerMessage(36, LogLevel.Warning, "Judge window held: {Share:P1} of the last block of accepted scores sat just under the cut, where normals put {Expected:P0}, as anomalies the model cannot tell apart do; the threshold stays where it is and no samples are accepted until a block looks normal again (held {Times} time(s) since the last such warning; anomaly_monitor_judge_blocks_total counts each block)")]
    public static partial void WindowHeld(ILogger logger, double share, double expected, long times);

    [LoggerMessage(37, LogLevel.Information, "Judge window learning again: {Share:P1} of the last block just under the cut (normals: {Expected:P0})")]
    public static partial void WindowReleased(ILogger logger, double share, double expected);

    [LoggerMessage(38, LogLevel.Warning, "Could not set the {Thread} thread's nice value to {Nice}; it runs at the process's")]
    public static partial void NiceNotSet(ILogger logger, string thread, int nice);

    [LoggerMessage(47, LogLevel.Error, "The broker keeps refusing a {Kind} message on {Topic} (outbox seq {Seq}): {Reason}. It is kept in outbox.db's dead_letters table and the messages behind it go on")]
    public static partial void AlertDeadLettered(ILogger logger, string kind, string topic, long seq, string reason);

    [LoggerMessage(46, LogLevel.Warning, "The folder source cannot watch {Path} for changes ({Reason}); it finds new files by rescanning every {Seconds} s instead")]
    public static partial void FolderWatcherUnavailable(ILogger logger, string path, string reason, double seconds);

    [LoggerMessage(41, LogLevel.Error, "The folder source could not go through {Path}: {Reason}. It tries again in {Seconds} s; nothing in the folder is lost")]
    public static partial void FolderLoopFailed(ILogger logger, string path, string reason, double seconds);

    [LoggerMessage(42, LogLevel.Warning, "Folder: a name that is not valid UTF-8 was renamed to {Path} (the bad bytes written as %XX) so that it can be judged")]
    public static partial void FolderNameEscaped(ILogger logger, string path);

    [LoggerMessage(43, LogLevel.Information, "Retention: deleted {Files} files ({Bytes} bytes) from {Folder}, past Ingest:Retention's age or size; {Kept} bytes kept")]
    public static partial void RetentionPruned(ILogger logger, int files, long bytes, string folder, long kept);

    [LoggerMessage(44, LogLevel.Warning, "Retention: {Failures} entries in {Folder} could not be read or deleted (first: {Reason}); the next pass tries again")]
    public static partial void RetentionFailed(ILogger logger, string folder, int failures, string reason);
}
