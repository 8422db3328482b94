using AnomalyMonitor.Configuration;
using Microsoft.Extensions.Options;

namespace AnomalyMonitor.Ingest;

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
    /// <summary>
    /// Judged files whose move out of processing/ may wait for the mover thread (0: the sink thread moves each
    /// itself). A kill -9 judges these again at the next start.
    /// </summary>
    public int MoveQueue { get; set; } = 256;
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
    public RetentionOptions Retention { get; set; } = new();
}

internal sealed class IngestOptionsValidator : IValidateOptions<IngestOptions>
{
    public ValidateOptionsResult Validate(string? name, IngestOptions o)
    {
        var f = new List<string>();
        if (o.Folder.Enabled && string.IsNullOrWhiteSpace(o.Folder.Path)) f.Add("Ingest:Folder:Path must be set when the folder source is enabled.");
        OptionChecks.Positive(f, "Ingest:Folder:RescanInterval", o.Folder.RescanInterval);
        if (o.Folder.StableFor < TimeSpan.Zero) f.Add($"Ingest:Folder:StableFor must not be negative, was {o.Folder.StableFor}.");
        OptionChecks.AtLeast(f, "Ingest:Folder:MaxFileBytes", o.Folder.MaxFileBytes, 1);
        OptionChecks.AtLeast(f, "Ingest:Folder:MoveQueue", o.Folder.MoveQueue, 0);
        if (o.Mqtt.Enabled && o.Mqtt.Topics.Count == 0) f.Add("Ingest:Mqtt:Topics must hold at least one topic filter when the MQTT source is enabled.");
        foreach (var t in o.Mqtt.Topics.Where(t => string.IsNullOrWhiteSpace(t) || t.Contains('#', StringComparison.Ordinal) && !t.EndsWith('#')))
            f.Add($"Ingest:Mqtt:Topics: '{t}' is not a valid filter ('#' may only end a filter).");
        OptionChecks.Positive(f, "Ingest:Mqtt:SessionExpiry", o.Mqtt.SessionExpiry);
        o.Retention.Validate(f);
        return OptionChecks.Result(f);
    }
}
