using System.Collections.Concurrent;
using AnomalyMonitor.Core.Data;
using AnomalyMonitor.Core.Imaging;
using AnomalyMonitor.Core.Storage;
using AnomalyMonitor.Pipeline;
using AnomalyMonitor.State;
using AnomalyMonitor.Telemetry;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace AnomalyMonitor.Ingest;

/// <summary>
/// Watches a folder (FileSystemWatcher, plus a periodic rescan because watchers drop events). A regular
/// file is taken once its size has been stable for a while, claimed by an atomic rename into processing/,
/// handed to the pipeline as one item (an image, or a batch file of many), and when it settles moved to
/// processed/normal, processed/anomaly (if any image in it was anomalous) or, when every image in it was
/// refused, rejected/ (with a .reason.txt).
/// Named pipes, sockets, devices and directories are left where they are (reading a pipe would block
/// the source); a symbolic link is moved to rejected/ without ever being followed. A file handed back
/// by the pipeline is submitted again after a backoff; files left in processing/ by a crash are judged
/// again at start.
/// </summary>
public sealed class FolderSource(
    Intake intake, IOptions<IngestOptions> ingest, IOptions<PipelineOptions> pipeline, PathResolver paths, TimeProvider time,
    MonitorMetrics metrics, ILogger<FolderSource> logger) : BackgroundService, IIngestSource
{
    private const int MaxReasonLines = 100;

    private readonly ConcurrentDictionary<string, byte> _candidates = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (long Size, DateTimeOffset Since)> _sizes = new(StringComparer.Ordinal);
    private readonly Dictionary<string, FileKind> _leftAlone = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, int> _attempts = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<(string Path, DateTimeOffset Due)> _retries = new();
    private readonly SemaphoreSlim _wake = new(0);
    private volatile bool _stopping;
    private FolderMover<SettledFile>? _mover;

    private FolderSourceOptions Options => ingest.Value.Folder;
    public string Name => "folder";
    public bool Enabled => Options.Enabled;
    public FolderLayout Layout { get; } = new(paths.Resolve(ingest.Value.Folder.Path));

    /// <summary>Full rescans of the folder so far: how a test knows the source looked again.</summary>
    public long Rescans => Interlocked.Read(ref _rescans);
    private long _rescans;

    /// <summary>Files offered again after a hand-back: how a test knows the retries went on.</summary>
    public long Retried => Interlocked.Read(ref _retried);
    private long _retried;

    /// <summary>Test hook: runs between the claim and the read, to make a file vanish or change there.</summary>
    internal Action<string>? AfterClaim { get; set; }

    /// <summary>Test hook: runs before each rescan; what it throws stands for a folder that cannot be listed (EIO, ESTALE).</summary>
    internal Action? RescanFault { get; set; }

    /// <summary>The folders exist once the service reports started, so writers can drop files at once.</summary>
    public override Task StartAsync(CancellationToken cancellationToken)
    {
        if (Enabled) Layout.Create();
        _mover = new FolderMover<SettledFile>(Enabled ? Options.MoveQueue : 0, MoveOut);
        return base.StartAsync(cancellationToken);
    }

    /// <summary>Files judged whose move out of processing/ is queued or under way.</summary>
    public int PendingMoves => _mover?.Pending ?? 0;

    /// <summary>Settled files moved on the pipeline's thread because the mover's queue was full (or stopped).</summary>
    public long MovesOnPipelineThread => _mover?.MovedByCaller ?? 0;

    /// <summary>The queued moves are done before the service stops; settlements after that move their file at once.</summary>
    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
        _mover?.Dispose();
    }

    public override void Dispose()
    {
        _mover?.Dispose();
        base.Dispose();
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!Enabled) return;
        using var stopping = stoppingToken.Register(() => _stopping = true);
        await Task.Yield();
        await RecoverUntilDoneAsync(stoppingToken).ConfigureAwait(false);
        using var watcher = Watch();

        var lastScan = DateTimeOffset.MinValue;
        bool failed = false; // the last pass failed: wait a rescan interval, not a settling poll
        while (!stoppingToken.IsCancellationRequested)
        {
            var now = time.GetUtcNow();
            try
            {
                if (now - lastScan >= Options.RescanInterval)
                {
                    lastScan = now;
                    RescanFault?.Invoke();
                    Rescan();
                }
                await SubmitDueRetriesAsync(now, stoppingToken).ConfigureAwait(false);
                foreach (var path in _candidates.Keys.ToList())
                {
                    if (stoppingToken.IsCancellationRequested) break;
                    try
                    {
                        await ConsiderAsync(path, now, stoppingToken).ConfigureAwait(false);
                    }
                    catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                    {
                        // This entry only (its stat or claim failed): the others go on, and the next rescan offers it again.
                        Forget(path);
                        metrics.SourceErrors.WithLabels("folder").Inc();
                        Log.FolderLoopFailed(logger, path, e.Message, Options.RescanInterval.TotalSeconds);
                    }
                }
                failed = false;
            }
            catch (Exception e) when (e is not OperationCanceledException and not OutOfMemoryException)
            {
                // A folder that cannot be listed for a while (an NFS hiccup, EIO, a lost mount) must not end the
                // source for good, unnoticed: the pass is counted and logged, and the next rescan tries again.
                // Files stay where they are until then, in the inbox or in processing/.
                metrics.SourceErrors.WithLabels("folder").Inc();
                Log.FolderLoopFailed(logger, Layout.Root, e.Message, Options.RescanInterval.TotalSeconds);
                lastScan = now;
                failed = true;
            }
            try
            {
                // Poll while files are settling or retries are due; otherwise wait for the watcher or the next rescan.
                var wait = _candidates.IsEmpty || failed ? Options.RescanInterval : TimeSpan.FromMilliseconds(Math.Max(20, Options.StableFor.TotalMilliseconds / 3));
                if (NextRetryIn(now) is { } retry && retry < wait) wait = retry;
                await _wake.WaitAsync(wait, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
    }

    private void Rescan()
    {
        var present = new HashSet<string>(StringComparer.Ordinal);
        bool undecodable = false;
        foreach (var entry in Directory.EnumerateFileSystemEntries(Layout.Root))
        {
            // U+FFFD stands for bytes that were not UTF-8 when the path no longer names the entry; a valid name may hold it too.
            if (entry.Contains('\uFFFD') && NamesNothing(entry))
            {
                undecodable = true;
                continue;
            }
            present.Add(entry);
            Notice(entry);
        }
        if (undecodable) RenameUndecodable();
        // An entry left alone that went away is reported again if it comes back.
        foreach (var gone in _leftAlone.Keys.Where(k => !present.Contains(k)).ToList()) _leftAlone.Remove(gone);
        Interlocked.Increment(ref _rescans);
    }

    private static bool NamesNothing(string entry)
    {
        try
        {
            return FileKinds.Of(entry) == FileKind.Missing;
        }
        catch (IOException)
        {
            return true; // ENAMETOOLONG: each U+FFFD is three bytes, so the decoded name can pass 255 where the real one did not
        }
    }

    /// <summary>Renames entries whose names are not UTF-8 to escaped ones, which the next pass takes as usual.</summary>
    private void RenameUndecodable()
    {
        foreach (var name in UndecodableNames.In(Layout.Root))
        {
            // A writer's temporary file is left to its writer, whose own rename would fail if this one came first.
            if (FolderLayout.Ignored(UndecodableNames.Escape(name))) continue;
            string? renamed;
            try
            {
                renamed = UndecodableNames.Rename(Layout.Root, name);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // This name only: the rest of the pass, and the other names, go on.
                metrics.SourceErrors.WithLabels("folder").Inc();
                Log.FolderLoopFailed(logger, Path.Combine(Layout.Root, UndecodableNames.EscapedName(name)), e.Message, Options.RescanInterval.TotalSeconds);
                continue;
            }
            if (renamed is null) continue;
            metrics.FolderRenamed.Inc();
            Log.FolderNameEscaped(logger, renamed);
            Notice(renamed);
        }
    }

    private void Notice(string path)
    {
        if (FolderLayout.Ignored(Path.GetFileName(path)) || Path.GetDirectoryName(path) != Layout.Root || Layout.IsOwnFolder(path)) return;
        if (path.Contains('\uFFFD') && NamesNothing(path)) return; // a name that is not UTF-8: the next rescan renames it
        _candidates.TryAdd(path, 0);
        _wake.Release();
    }

    private async Task ConsiderAsync(string path, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var kind = FileKinds.Of(path);
        switch (kind)
        {
            case FileKind.Missing:
                Forget(path);
                return;
            case FileKind.Regular:
                if (IsStable(path, now)) await TakeAsync(path, cancellationToken).ConfigureAwait(false);
                return;
            case FileKind.SymbolicLink:
                Forget(path);
                RejectFile(path, RejectReason.SymbolicLink, LinkDetail(path));
                return;
            default:
                Forget(path);
                LeaveAlone(path, kind);
                return;
        }
    }

    private void Forget(string path)
    {
        _candidates.TryRemove(path, out _);
        _sizes.Remove(path);
    }

    /// <summary>Pipes, sockets, devices and directories stay where they are: logged and counted once, not on every rescan.</summary>
    private void LeaveAlone(string path, FileKind kind)
    {
        if (_leftAlone.TryGetValue(path, out var seen) && seen == kind) return;
        _leftAlone[path] = kind;
        metrics.FolderSkipped.WithLabels(kind.Name()).Inc();
        Log.FolderEntrySkipped(logger, path, kind.Name());
    }

    private static string LinkDetail(string path)
    {
        string? target = null;
        try { target = new FileInfo(path).LinkTarget; } catch (IOException) { } // reading the link itself, never its target
        return $"a symbolic link{(target is null ? "" : $" to '{target}'")}; links are never followed";
    }

    private bool IsStable(string path, DateTimeOffset now)
    {
        var info = new FileInfo(path);
        if (!info.Exists)
        {
            Forget(path);
            return false;
        }
        if (!_sizes.TryGetValue(path, out var seen) || seen.Size != info.Length)
        {
            _sizes[path] = (info.Length, now);
            return Options.StableFor <= TimeSpan.Zero;
        }
        return now - seen.Since >= Options.StableFor;
    }

    private async Task TakeAsync(string path, CancellationToken cancellationToken)
    {
        Forget(path);
        string claimed;
        try
        {
            claimed = FolderLayout.MoveInto(path, Layout.Processing); // atomic rename: one taker only
        }
        catch (FileNotFoundException)
        {
            // Gone, or taken by another instance. Anything else (EACCES, EROFS: a unit without ReadWritePaths for
            // the folder) goes to the caller, which counts and logs it: silence would leave every file unjudged.
            return;
        }
        AfterClaim?.Invoke(claimed);
        await SubmitAsync(claimed, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Recovery at start meets the same NFS hiccups as every pass: it is retried each rescan interval, not left to
    /// end the source for good while the host runs on.
    /// </summary>
    private async Task RecoverUntilDoneAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            try
            {
                RecoveryFault?.Invoke();
                await RecoverAsync(cancellationToken).ConfigureAwait(false);
                return;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                metrics.SourceErrors.WithLabels("folder").Inc();
                Log.FolderLoopFailed(logger, Layout.Processing, e.Message, Options.RescanInterval.TotalSeconds);
                await Task.Delay(Options.RescanInterval, time, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Test hook: runs before each recovery attempt at start; an exception it throws fails that attempt.</summary>
    internal Action? RecoveryFault { get; set; }

    /// <summary>The inotify watcher, or null when it cannot be had (the inotify limit, a file system without it): rescans alone then find files.</summary>
    private FileSystemWatcher? Watch()
    {
        FileSystemWatcher? watcher = null;
        try
        {
            watcher = new FileSystemWatcher(Layout.Root) { IncludeSubdirectories = false, NotifyFilter = NotifyFilters.FileName | NotifyFilters.DirectoryName | NotifyFilters.Size | NotifyFilters.LastWrite };
            FileSystemEventHandler onChange = (_, e) => Notice(e.FullPath);
            watcher.Created += onChange;
            watcher.Changed += onChange;
            watcher.Renamed += (_, e) => Notice(e.FullPath);
            watcher.Error += (_, _) => _wake.Release(); // a dropped event: the rescan catches up
            watcher.EnableRaisingEvents = true;
            return watcher;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            watcher?.Dispose();
            Log.FolderWatcherUnavailable(logger, Layout.Root, e.Message, Options.RescanInterval.TotalSeconds);
            return null;
        }
    }

    private async Task RecoverAsync(CancellationToken cancellationToken)
    {
        var left = Directory.GetFileSystemEntries(Layout.Processing).Order(StringComparer.Ordinal).ToList();
        if (left.Count == 0) return;
        Log.RecoveringFiles(logger, Layout.Root, left.Count);
        foreach (var f in left) await SubmitAsync(f, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Hands a claimed file to the pipeline as one item: its bytes, or (a batch file) its path for the decoder to read.</summary>
    private async Task SubmitAsync(string claimed, CancellationToken cancellationToken)
    {
        var name = Path.GetFileName(claimed);
        var receivedAt = time.GetUtcNow();
        IngestItem item;
        try
        {
            // Checked again on the claimed name: the entry may have been swapped between the check and the rename.
            var kind = FileKinds.Of(claimed);
            if (kind == FileKind.Missing) throw new FileNotFoundException(null, claimed);
            if (kind != FileKind.Regular)
                throw new InputRejectedException(name, kind == FileKind.SymbolicLink ? RejectReason.SymbolicLink : RejectReason.Unsupported,
                    kind == FileKind.SymbolicLink ? LinkDetail(claimed) : $"a {kind.Name()}, not a regular file");
            var length = new FileInfo(claimed).Length;
            if (length > Options.MaxFileBytes)
                throw new InputRejectedException(name, RejectReason.TooLarge, $"{length} bytes exceeds the limit of {Options.MaxFileBytes}");
            item = IsBatchFile(name)
                ? NewItem(claimed, receivedAt, batchFile: true)
                : NewItem(claimed, receivedAt, File.ReadAllBytes(claimed)); // a small local file: a plain read is far cheaper than an async one
        }
        catch (InputRejectedException e)
        {
            RejectFile(claimed, e.Reason, e.Detail);
            return;
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            // Removed by someone else after the claim: there is nothing left to judge or to lose.
            metrics.FolderSkipped.WithLabels("vanished").Inc();
            Log.FolderError(logger, claimed, "the file vanished before it could be read");
            return;
        }
        catch (UnauthorizedAccessException e)
        {
            RejectFile(claimed, RejectReason.Unreadable, e.Message);
            return;
        }
        catch (IOException e)
        {
            Log.FolderError(logger, claimed, e.Message);
            ScheduleRetry(claimed);
            return;
        }
        await intake.SubmitAsync(item, cancellationToken).ConfigureAwait(false); // false at shutdown: it stays in processing/
    }

    private IngestItem NewItem(string path, DateTimeOffset receivedAt, ReadOnlyMemory<byte> payload = default, bool batchFile = false) => new()
    {
        Source = this,
        Id = Path.GetFileName(path),
        Label = "folder",
        ReceivedAt = receivedAt,
        Payload = payload,
        BatchFile = batchFile ? path : null,
        MaxBytes = Options.MaxFileBytes,
        State = path,
    };

    private static bool IsBatchFile(string name)
    {
        var ext = Path.GetExtension(name).ToLowerInvariant();
        return ext is ".npz" or ".npy" || IdxReader.IsIdxPath(name);
    }

    /// <summary>Refuses a file as a whole, through the intake like every refusal; its settlement moves it to rejected/.</summary>
    private void RejectFile(string path, RejectReason reason, string detail) =>
        intake.RejectWhole(NewItem(path, time.GetUtcNow()), reason, detail);

    private void MoveToRejected(string path, string reasonText)
    {
        var target = FolderLayout.MoveInto(path, Layout.Rejected); // a rename: moves a link itself, never what it points to
        // Whole or absent: a script that lists rejected/ never reads half a reason.
        AtomicFile.Write(target + ".reason.txt", System.Text.Encoding.UTF8.GetBytes(reasonText + Environment.NewLine));
    }

    /// <summary>
    /// A file the pipeline handed back (a failure, not a shutdown) is submitted again after a backoff that
    /// doubles each time; after Pipeline:MaxAttempts it goes to rejected/ instead of looping for ever.
    /// </summary>
    private void ScheduleRetry(string claimed, string? reason = null, bool waiting = false)
    {
        if (_stopping) return; // stays in processing/: judged again at the next start
        var p = pipeline.Value;
        if (waiting)
        {
            // The service cannot take it yet: not a failed attempt, offered again at the slowest retry pace.
            _retries.Enqueue((claimed, time.GetUtcNow() + p.RetryMaxDelay));
            _wake.Release();
            return;
        }
        int attempt = _attempts.AddOrUpdate(claimed, 1, (_, n) => n + 1);
        if (attempt >= p.MaxAttempts)
        {
            _attempts.TryRemove(claimed, out _);
            RejectFile(claimed, RejectReason.Failed, $"handed back {attempt} times{(reason is null ? "" : $", last: {reason}")}");
            return;
        }
        var delay = TimeSpan.FromTicks(Math.Min(p.RetryMaxDelay.Ticks, p.RetryDelay.Ticks * (1L << Math.Min(attempt - 1, 20))));
        _retries.Enqueue((claimed, time.GetUtcNow() + delay));
        _wake.Release();
    }

    private TimeSpan? NextRetryIn(DateTimeOffset now) =>
        _retries.IsEmpty ? null : _retries.Min(r => r.Due) - now is var d && d > TimeSpan.Zero ? d : TimeSpan.Zero;

    private async Task SubmitDueRetriesAsync(DateTimeOffset now, CancellationToken cancellationToken)
    {
        int n = _retries.Count;
        for (int i = 0; i < n && _retries.TryDequeue(out var retry); i++)
        {
            if (retry.Due > now) _retries.Enqueue(retry);
            else
            {
                Interlocked.Increment(ref _retried);
                await SubmitAsync(retry.Path, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>The file's last image is settled: moved by what became of its images, or offered again if handed back.</summary>
    public void Settle(IngestItem item)
    {
        var path = (string)item.State!;
        if (item.HandedBackAtShutdown) return; // stays in processing/: judged again at the next start
        if (item.HandedBack)
        {
            ScheduleRetry(path, item.HandBackReason, item.HandedBackWaiting);
            return;
        }
        _attempts.TryRemove(path, out _);
        var settled = item.Rejections.Count >= item.Images
            ? new SettledFile(path, null, string.Join(Environment.NewLine, item.Rejections.Take(MaxReasonLines).Select(r => $"{r.Id}: {r.Reason.Name()}: {r.Detail}")))
            : new SettledFile(path, Options.DeleteProcessed ? null : item.Anomalies > 0 ? Layout.Anomaly : Layout.Normal, null);
        if (_mover is { } mover) mover.Move(settled);
        else MoveOut(settled);
    }

    /// <summary>Where a settled file goes: rejected/ with its reasons, a processed/ folder, or (Folder:DeleteProcessed) away.</summary>
    private readonly record struct SettledFile(string Path, string? Folder, string? RejectedBecause);

    /// <summary>On the mover's thread (or the caller's): a failure is logged, and the file stays in processing/ for the next start.</summary>
    private void MoveOut(SettledFile file)
    {
        try
        {
            if (file.RejectedBecause is { } reasons) MoveToRejected(file.Path, reasons);
            else if (file.Folder is null) File.Delete(file.Path);
            else FolderLayout.MoveInto(file.Path, file.Folder);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Log.FolderError(logger, file.Path, e.Message);
        }
    }
}
