using AnomalyMonitor.State;
using System.Text;
using System.Text.Json;
using AnomalyMonitor.Alerts;
using AnomalyMonitor.Core.Imaging;
using AnomalyMonitor.Core.Runtime;
using AnomalyMonitor.Telemetry;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace AnomalyMonitor.Evidence;

/// <summary>Paths of one anomaly's evidence, relative to the evidence folder (they travel in alerts).</summary>
public sealed record EvidencePaths(string Original, string Reconstruction, string Heatmap, string Record);

/// <summary>A named but not yet written record: its folder and the paths its alert carries.</summary>
public sealed record EvidenceReservation(string Directory, EvidencePaths Paths);

/// <summary>One stored record: its key (the folder name), its folder and the alert it recorded.</summary>
public sealed record EvidenceRecord(string Key, string Directory, AnomalyAlert Alert);

/// <summary>
/// For each anomaly: the original, the reconstruction and a per-pixel error heatmap as PNG, with a JSON
/// record, under Evidence:Path/yyyy-MM-dd/&lt;key&gt;/. Bounded by count and by age. The files are written
/// by a writer thread of their own, after the alert has gone on: on a slow disk four file creations cost
/// milliseconds, and neither an alert nor an acknowledgement waits for evidence, which is not durable.
/// The writer also deletes what falls out of the bounds, one record out for each record in, so that the
/// cost is spread evenly instead of landing as one burst of thousands of deletions at each housekeeping
/// tick; and it runs at Evidence:WriterNice, so that on a busy machine it gives the cores to the verdicts.
/// </summary>
public sealed class EvidenceStore : IDisposable
{
    private sealed record Work(EvidenceReservation Reserved, ImageShape Shape, float[] Original, float[] Reconstruction, float[] ErrorMap, object Record);

    /// <summary>Records the writer may fall behind by; beyond that new evidence is skipped (and counted).</summary>
    public const int MaxQueued = 1024;

    // A null item asks the writer for a housekeeping pass (age, count and empty days).
    private readonly Channel<Work?> _queue = Channel.CreateBounded<Work?>(new BoundedChannelOptions(MaxQueued) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
    private readonly TaskCompletionSource _writerDone = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _writerThreadId = -1;
    private readonly ILogger<EvidenceStore> _logger;
    private long _queued, _written;
    private readonly string _root;
    private readonly EvidenceOptions _options;
    private readonly TimeProvider _time;
    private readonly MonitorMetrics _metrics;
    private readonly Queue<string> _records = new();
    private readonly Dictionary<string, string> _byKey = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();
    private long _sequence;
    private string? _dayReady; // the sink stage reserves from one thread

    public EvidenceStore(IOptions<EvidenceOptions> options, PathResolver paths, TimeProvider time, MonitorMetrics metrics, ILogger<EvidenceStore> logger)
    {
        _logger = logger;
        _options = options.Value;
        _root = paths.Resolve(_options.Path);
        _time = time;
        _metrics = metrics;
        Directory.CreateDirectory(_root);
        foreach (var dir in Directory.EnumerateDirectories(_root).Order(StringComparer.Ordinal).SelectMany(d => Directory.EnumerateDirectories(d).Order(StringComparer.Ordinal)))
            Add(dir);
        _metrics.EvidenceItems.Set(_records.Count);
        new Thread(WriteQueued) { IsBackground = true, Name = "evidence" }.Start();
    }

    /// <summary>The writer thread's kernel id, once it runs (tests read its nice value).</summary>
    internal int WriterThreadId => Volatile.Read(ref _writerThreadId);

    /// <summary>Records queued and not yet written or given up (tests wait for it to reach zero).</summary>
    public long Queued => Interlocked.Read(ref _queued) - Interlocked.Read(ref _written);

    /// <summary>
    /// Hands a reserved record to the writer. False, and nothing written, when a thousand records are already
    /// waiting: the disk cannot keep up, and evidence gives way before the pipeline does.
    /// </summary>
    public bool Enqueue(EvidenceReservation reserved, ImageShape shape, float[] original, float[] reconstruction, float[] errorMap, object record)
    {
        // Counted before the writer can see it, so Queued never reads 0 (or -1) while a record is on its way.
        Interlocked.Increment(ref _queued);
        if (_queue.Writer.TryWrite(new Work(reserved, shape, original, reconstruction, errorMap, record))) return true;
        Interlocked.Decrement(ref _queued);
        return false;
    }

    private void WriteQueued()
    {
        if (_options.WriterNice != 0 && !ThreadNice.TrySetCurrent(_options.WriterNice)) Log.NiceNotSet(_logger, "evidence writer", _options.WriterNice);
        Volatile.Write(ref _writerThreadId, ThreadNice.CurrentThreadId());
        try
        {
            var reader = _queue.Reader;
            while (reader.WaitToReadAsync().AsTask().GetAwaiter().GetResult())
                while (reader.TryRead(out var w))
                {
                    if (w is null) PruneLogged();
                    else WriteOne(w);
                }
        }
        finally
        {
            _writerDone.TrySetResult();
        }
    }

    // An unhandled exception on this thread would end the process: a failed pass is logged, and the next tick tries again.
    private void PruneLogged()
    {
        try { Prune(); }
        catch (Exception e) when (e is not OutOfMemoryException) { Log.SinkFailed(_logger, "evidence prune", _root, e.Message); }
    }

    private void WriteOne(Work w)
    {
        try
        {
            Write(w.Reserved, w.Shape, w.Original, w.Reconstruction, w.ErrorMap, w.Record);
            Delete(Doomed(byAge: false));
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // One record's failure (full disk, or anything else) never stops the writer.
            _metrics.StorageErrors.WithLabels("evidence").Inc();
            Log.SinkFailed(_logger, "evidence", w.Reserved.Paths.Record, e.Message);
            // Its files so far are no record (never listed, so never pruned): gone now, not at the next start.
            try { Directory.Delete(w.Reserved.Directory, recursive: true); }
            catch (Exception again) when (again is IOException or UnauthorizedAccessException) { }
        }
        finally
        {
            Interlocked.Increment(ref _written);
        }
    }

    /// <summary>Writes what is queued (for a few seconds at most) and stops the writer.</summary>
    public void Dispose()
    {
        _queue.Writer.TryComplete();
        _writerDone.Task.Wait(TimeSpan.FromSeconds(5));
    }

    /// <summary>
    /// Names the record of one anomaly, so its alert can carry the paths at once; <see cref="Write"/> fills it in.
    /// Only the day's folder is made here (once a day): that is the failure an alert can still be told about.
    /// </summary>
    public EvidenceReservation Reserve(string itemId)
    {
        var now = _time.GetUtcNow();
        var day = now.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture);
        if (day != _dayReady)
        {
            Directory.CreateDirectory(Path.Combine(_root, day));
            _dayReady = day;
        }
        var key = $"{now:HHmmss.fff}-{Interlocked.Increment(ref _sequence):D6}-{Safe(itemId)}";
        var relative = Path.Combine(day, key);
        return new EvidenceReservation(Path.Combine(_root, relative), new EvidencePaths(Path.Combine(relative, "original.png"),
            Path.Combine(relative, "reconstruction.png"), Path.Combine(relative, "heatmap.png"), Path.Combine(relative, "record.json")));
    }

    /// <summary>Writes a reserved record; it is listed (page, feedback) once all of its files are there.</summary>
    public void Write(EvidenceReservation reserved, ImageShape shape, ReadOnlySpan<float> original, ReadOnlySpan<float> reconstruction, ReadOnlySpan<float> errorMap, object record)
    {
        var paths = reserved.Paths;
        Directory.CreateDirectory(reserved.Directory);
        File.WriteAllBytes(Path.Combine(_root, paths.Original), ImageEncoder.EncodePng(original, shape));
        File.WriteAllBytes(Path.Combine(_root, paths.Reconstruction), ImageEncoder.EncodePng(reconstruction, shape));
        using (var heat = ImageEncoder.ToHeatmap(errorMap, shape.Height, shape.Width))
            File.WriteAllBytes(Path.Combine(_root, paths.Heatmap), ImageEncoder.EncodePng(heat));
        // No fsync here: the alert in the outbox is the durable record; evidence is written, not synced, to keep the hot path quick.
        File.WriteAllBytes(Path.Combine(_root, paths.Record), JsonSerializer.SerializeToUtf8Bytes(record, AlertJson.Options));
        lock (_lock)
        {
            Add(reserved.Directory);
            _metrics.EvidenceItems.Set(_records.Count);
        }
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

    /// <summary>
    /// The newest record of an item, or null. Only the records whose folder name ends in the item's id are read:
    /// feedback naming an unknown id (a typo, a flood on the feedback topic) must not read all MaxCount records.
    /// </summary>
    public EvidenceRecord? Find(string itemId)
    {
        string[] dirs;
        lock (_lock) dirs = [.. _records];
        var safe = Safe(itemId);
        foreach (var dir in dirs.Reverse())
        {
            if (IdPart(Path.GetFileName(dir.AsSpan())).SequenceEqual(safe) && Read(dir) is { } record && record.Alert.Id == itemId) return record;
        }
        return null;
    }

    /// <summary>The id part of a record's key, HHmmss.fff-sequence-id (neither of the first two holds a dash).</summary>
    private static ReadOnlySpan<char> IdPart(ReadOnlySpan<char> key)
    {
        int first = key.IndexOf('-');
        int second = first < 0 ? -1 : key[(first + 1)..].IndexOf('-');
        return second < 0 ? [] : key[(first + second + 2)..];
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

    /// <summary>Asks the writer thread for a housekeeping pass (<see cref="Prune"/>); skipped while a full queue keeps it busy.</summary>
    public void RequestPrune() => _queue.Writer.TryWrite(null);

    /// <summary>Deletes the oldest records beyond MaxCount and any older than MaxAge, and empty day folders but today's.</summary>
    public int Prune()
    {
        int removed = Delete(Doomed(byAge: true));
        var today = _time.GetUtcNow().ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture);
        foreach (var day in Directory.EnumerateDirectories(_root))
        {
            // Today's folder may be about to receive a record: leave it even when empty.
            if (Path.GetFileName(day) == today) continue;
            try { if (!Directory.EnumerateFileSystemEntries(day).Any()) Directory.Delete(day); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { } // a record landed meanwhile, or not ours to delete
        }
        return removed;
    }

    /// <summary>Takes the records beyond MaxCount (and, <paramref name="byAge"/>, those older than MaxAge) out of the index.</summary>
    private List<string> Doomed(bool byAge)
    {
        var cutoff = (_time.GetUtcNow() - _options.MaxAge).UtcDateTime;
        var doomed = new List<string>();
        // Only the bookkeeping runs under the lock: deleting folders is slow and would stall Reserve and the page.
        lock (_lock)
        {
            while (_records.Count > 0 && (_records.Count > _options.MaxCount || (byAge && Directory.GetCreationTimeUtc(_records.Peek()) < cutoff)))
            {
                var dir = _records.Dequeue();
                _byKey.Remove(Path.GetFileName(dir));
                doomed.Add(dir);
            }
            if (doomed.Count > 0) _metrics.EvidenceItems.Set(_records.Count);
        }
        return doomed;
    }

    private int Delete(List<string> doomed)
    {
        int removed = 0;
        foreach (var dir in doomed)
        {
            try { Directory.Delete(dir, recursive: true); removed++; }
            catch (DirectoryNotFoundException) { }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { Log.SinkFailed(_logger, "evidence prune", dir, e.Message); }
        }
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
