using AnomalyMonitor.State;
using System.Text;
using System.Text.Json;
using AnomalyMonitor.Alerts;
using AnomalyMonitor.Core.Imaging;
using AnomalyMonitor.Telemetry;
using Microsoft.Extensions.Options;

namespace AnomalyMonitor.Evidence;

/// <summary>Paths of one anomaly's evidence, relative to the evidence folder (they travel in alerts).</summary>
public sealed record EvidencePaths(string Original, string Reconstruction, string Heatmap, string Record);

/// <summary>One stored record: its key (the folder name), its folder and the alert it recorded.</summary>
public sealed record EvidenceRecord(string Key, string Directory, AnomalyAlert Alert);

/// <summary>
/// For each anomaly: the original, the reconstruction and a per-pixel error heatmap as PNG, with a JSON
/// record, under Evidence:Path/yyyy-MM-dd/&lt;key&gt;/. Bounded by count and by age.
/// </summary>
public sealed class EvidenceStore
{
    private readonly string _root;
    private readonly EvidenceOptions _options;
    private readonly TimeProvider _time;
    private readonly MonitorMetrics _metrics;
    private readonly Queue<string> _records = new();
    private readonly Dictionary<string, string> _byKey = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();
    private long _sequence;

    public EvidenceStore(IOptions<EvidenceOptions> options, PathResolver paths, TimeProvider time, MonitorMetrics metrics)
    {
        _options = options.Value;
        _root = paths.Resolve(_options.Path);
        _time = time;
        _metrics = metrics;
        Directory.CreateDirectory(_root);
        foreach (var dir in Directory.EnumerateDirectories(_root).Order(StringComparer.Ordinal).SelectMany(d => Directory.EnumerateDirectories(d).Order(StringComparer.Ordinal)))
            Add(dir);
        _metrics.EvidenceItems.Set(_records.Count);
    }

    public EvidencePaths Write(string itemId, ImageShape shape, ReadOnlySpan<float> original, ReadOnlySpan<float> reconstruction, ReadOnlySpan<float> errorMap, object record)
    {
        var now = _time.GetUtcNow();
        var key = $"{now:HHmmss.fff}-{Interlocked.Increment(ref _sequence):D6}-{Safe(itemId)}";
        var relative = Path.Combine(now.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture), key);
        var dir = Path.Combine(_root, relative);
        Directory.CreateDirectory(dir);
        var paths = new EvidencePaths(Path.Combine(relative, "original.png"), Path.Combine(relative, "reconstruction.png"),
            Path.Combine(relative, "heatmap.png"), Path.Combine(relative, "record.json"));
        File.WriteAllBytes(Path.Combine(_root, paths.Original), ImageEncoder.EncodePng(original, shape));
        File.WriteAllBytes(Path.Combine(_root, paths.Reconstruction), ImageEncoder.EncodePng(reconstruction, shape));
        using (var heat = ImageEncoder.ToHeatmap(errorMap, shape.Height, shape.Width))
            File.WriteAllBytes(Path.Combine(_root, paths.Heatmap), ImageEncoder.EncodePng(heat));
        // No fsync here: the alert in the outbox is the durable record; evidence is written, not synced, to keep the hot path quick.
        File.WriteAllBytes(Path.Combine(_root, paths.Record), JsonSerializer.SerializeToUtf8Bytes(record, AlertJson.Options));
        lock (_lock)
        {
            Add(dir);
            _metrics.EvidenceItems.Set(_records.Count);
        }
        return paths;
    }

    private void Add(string dir)
    {
        _records.Enqueue(dir);
        _byKey[Path.GetFileName(dir)] = dir;
    }

    /// <summary>The newest <paramref name="count"/> records, newest first.</summary>
    public IReadOnlyList<EvidenceRecord> Latest(int count)
    {
        string[] dirs;
        lock (_lock) dirs = [.. _records];
        var list = new List<EvidenceRecord>(count);
        for (int i = dirs.Length - 1; i >= 0 && list.Count < count; i--)
            if (Read(dirs[i]) is { } record) list.Add(record);
        return list;
    }

    /// <summary>The files a record may serve; nothing else under the evidence folder is reachable by name.</summary>
    public static readonly IReadOnlyDictionary<string, string> Images = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["original"] = "original.png",
        ["reconstruction"] = "reconstruction.png",
        ["heatmap"] = "heatmap.png",
    };

    /// <summary>
    /// The file of one image of a known record, or null. The key is only ever compared with the keys this
    /// store wrote; the path is built from the store's own folder, so no request text reaches the file system.
    /// </summary>
    public string? ImagePath(string key, string kind)
    {
        if (!Images.TryGetValue(kind, out var file)) return null;
        string? dir;
        lock (_lock) _byKey.TryGetValue(key, out dir);
        return dir is null ? null : Path.Combine(dir, file);
    }

    /// <summary>The newest record of an item, or null. Feedback is rare, so this reads the records rather than keeping an index.</summary>
    public EvidenceRecord? Find(string itemId)
    {
        string[] dirs;
        lock (_lock) dirs = [.. _records];
        foreach (var dir in dirs.Reverse())
        {
            if (Read(dir) is { } record && record.Alert.Id == itemId) return record;
        }
        return null;
    }

    private static EvidenceRecord? Read(string dir)
    {
        try
        {
            var alert = JsonSerializer.Deserialize<AnomalyAlert>(File.ReadAllBytes(Path.Combine(dir, "record.json")), AlertJson.Options);
            return alert is null ? null : new EvidenceRecord(Path.GetFileName(dir), dir, alert);
        }
        catch (Exception e) when (e is IOException or JsonException or UnauthorizedAccessException)
        {
            return null; // pruned meanwhile, or damaged: not evidence
        }
    }

    /// <summary>Deletes the oldest records beyond MaxCount and any older than MaxAge.</summary>
    public int Prune()
    {
        int removed = 0;
        var cutoff = _time.GetUtcNow() - _options.MaxAge;
        lock (_lock)
        {
            while (_records.Count > 0 && (_records.Count > _options.MaxCount || Directory.GetCreationTimeUtc(_records.Peek()) < cutoff.UtcDateTime))
            {
                var dir = _records.Dequeue();
                _byKey.Remove(Path.GetFileName(dir));
                try { Directory.Delete(dir, recursive: true); removed++; }
                catch (DirectoryNotFoundException) { }
            }
            _metrics.EvidenceItems.Set(_records.Count);
        }
        foreach (var day in Directory.EnumerateDirectories(_root))
            if (!Directory.EnumerateFileSystemEntries(day).Any()) Directory.Delete(day);
        return removed;
    }

    // Ids come from senders: keep them out of path syntax.
    private static string Safe(string id)
    {
        var sb = new StringBuilder(Math.Min(id.Length, 60));
        foreach (var c in id)
        {
            if (sb.Length >= 60) break;
            sb.Append(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '_');
        }
        return sb.ToString().Trim('.');
    }
}

public static class AlertJson
{
    public static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull,
        WriteIndented = false,
    };
}
