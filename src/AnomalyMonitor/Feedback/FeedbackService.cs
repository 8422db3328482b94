using AnomalyMonitor.Core.Imaging;
using AnomalyMonitor.Alerts;
using AnomalyMonitor.Evidence;
using AnomalyMonitor.Fleet;
using AnomalyMonitor.Pipeline;
using AnomalyMonitor.Samples;
using AnomalyMonitor.Telemetry;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace AnomalyMonitor.Feedback;

/// <summary>The answer to one piece of feedback; Result is applied, unknown_id or invalid.</summary>
public sealed record FeedbackReply(string? Id, string? Label, string Result, string Message)
{
    public const string Applied = "applied";
    public const string UnknownId = "unknown_id";
    public const string Invalid = "invalid";
}

/// <summary>
/// Applies an operator's label to an item, from the HTTP API or the MQTT topic. A false alarm ("normal")
/// puts the item's evidence image into the normal-sample store; a confirmed anomaly takes the item out of
/// the store if it got in, and keeps it as a labelled anomaly for the retraining gate. Anything that is
/// not understood changes nothing.
/// </summary>
public sealed class FeedbackService(
    NormalSampleStore store, EvidenceStore evidence, ModelHolder holder, AlertOutbox outbox, IOptions<FleetOptions> fleet, TimeProvider time,
    MonitorMetrics metrics, ILogger<FeedbackService> logger)
{
    public const int MaxIdLength = 1024;

    public FeedbackReply Apply(string? id, string? label, string channel)
    {
        var reply = Decide(id, label, channel);
        metrics.Feedback.WithLabels(channel, Known(reply.Label), reply.Result).Inc();
        Log.FeedbackApplied(logger, Known(reply.Label), Shorten(id ?? "(none)"), channel, $"{reply.Result}: {reply.Message}");
        return reply;
    }

    private FeedbackReply Decide(string? id, string? label, string channel)
    {
        if (string.IsNullOrWhiteSpace(id) || id.Length > MaxIdLength)
            return new(id, label, FeedbackReply.Invalid, $"'id' must be a non-empty item id of at most {MaxIdLength} characters");
        FeedbackLabel parsed;
        if (string.Equals(label, "normal", StringComparison.OrdinalIgnoreCase)) parsed = FeedbackLabel.Normal;
        else if (string.Equals(label, "anomaly", StringComparison.OrdinalIgnoreCase)) parsed = FeedbackLabel.Anomaly;
        else return new(id, label, FeedbackReply.Invalid, $"'label' must be \"normal\" or \"anomaly\", was {(label is null ? "missing" : $"\"{Shorten(label)}\"")}");

        var shape = holder.InputShape;
        var record = evidence.Find(id);
        float[]? pixels = null;
        double score = 0;
        int version = holder.Version;
        if (record is not null)
        {
            try
            {
                pixels = ImageDecoder.Decode(File.ReadAllBytes(Path.Combine(record.Directory, "original.png")), id, shape);
                score = record.Alert.Score;
                version = record.Alert.ModelVersion;
            }
            catch (Exception e) when (e is IOException or InputRejectedException)
            {
                pixels = null; // evidence pruned or unreadable: fall back to the store
            }
        }
        pixels ??= store.Find(id, shape);
        if (fleet.Value.IsScorer && (pixels is not null || parsed == FeedbackLabel.Anomaly))
        {
            // The trainer holds this scorer's samples (as "<instance>:<id>"): it applies the label, with the
            // evidence's pixels when this scorer has them (a false alarm never reached the trainer, so without
            // them a "normal" label could not be applied there and is answered as unknown below).
            // Through the outbox, so a broker outage loses nothing.
            var f = fleet.Value;
            outbox.AddRange([new OutboxEntry(f.SamplesTopic,
                SampleMessage.EncodeLabel(f.EffectiveInstance, shape, id, parsed == FeedbackLabel.Normal ? "normal" : "anomaly", time.GetUtcNow(), score, version, pixels), "label")]); // a label is never dropped
            if (pixels is not null) store.Label(id, parsed, channel, time.GetUtcNow(), shape, pixels, score, version);
            return new(id, parsed == FeedbackLabel.Normal ? "normal" : "anomaly", FeedbackReply.Applied, $"forwarded to the fleet's trainer on {f.SamplesTopic}");
        }
        if (pixels is null)
            return new(id, label, FeedbackReply.UnknownId, $"no anomaly evidence and no stored sample for item '{Shorten(id)}' (evidence is kept for Evidence:MaxAge)");

        store.Label(id, parsed, channel, time.GetUtcNow(), shape, pixels, score, version);
        var what = parsed == FeedbackLabel.Normal
            ? "marked normal: the item is now a training sample"
            : "confirmed as an anomaly: kept out of training and used by the retraining gate";
        return new(id, parsed == FeedbackLabel.Normal ? "normal" : "anomaly", FeedbackReply.Applied, what);
    }

    private static string Known(string? label) => label is "normal" or "anomaly" ? label : "invalid";

    private static string Shorten(string s) => s.Length <= 80 ? s : s[..80] + "...";
}
