using System.Collections.Concurrent;
using AnomalyMonitor.Core.Data;
using AnomalyMonitor.Core.Imaging;
using AnomalyMonitor.Hosting;
using AnomalyMonitor.Pipeline;
using AnomalyMonitor.Telemetry;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace AnomalyMonitor.Ingest;

/// <summary>
/// Watches a folder (FileSystemWatcher, plus a periodic rescan because watchers drop events). A file is
/// taken once its size has been stable for a while, claimed by an atomic rename into processing/, and
/// after judging moved to processed/normal, processed/anomaly or rejected/ (with a .reason.txt).
/// Files left in processing/ by a crash are judged again at start.
/// </summary>
public sealed class FolderSource(
    ItemQueue queue, ModelHolder holder, IOptions<IngestOptions> ingest, IOptions<PipelineOptions> pipeline, PathResolver paths, TimeProvider time,
    MonitorMetrics metrics, ILogger<FolderSource> logger) : BackgroundService
{
    private readonly ConcurrentDictionary<string, byte> _candidates = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (long Size, DateTimeOffset Since)> _sizes = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _wake = new(0);

    private FolderSourceOptions Options => ingest.Value.Folder;
    public bool Enabled => Options.Enabled;
    public FolderLayout Layout { get; } = new(paths.Resolve(ingest.Value.Folder.Path));

    /// <summary>The folders exist once the service reports started, so writers can drop files at once.</summary>
    public override Task StartAsync(CancellationToken cancellationToken)
    {
        if (Enabled) Layout.Create();
        return base.StartAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!Enabled) return;
        await Task.Yield();
        await RecoverAsync(stoppingToken).ConfigureAwait(false);

        using var watcher = new FileSystemWatcher(Layout.Root) { IncludeSubdirectories = false, NotifyFilter = NotifyFilters.FileName | NotifyFilters.Size | NotifyFilters.LastWrite };
        FileSystemEventHandler onChange = (_, e) => Notice(e.FullPath);
        watcher.Created += onChange;
        watcher.Changed += onChange;
        watcher.Renamed += (_, e) => Notice(e.FullPath);
        watcher.Error += (_, _) => _wake.Release(); // a dropped event: the rescan below catches up
        watcher.EnableRaisingEvents = true;

        var lastScan = DateTimeOffset.MinValue;
        while (!stoppingToken.IsCancellationRequested)
        {
            var now = time.GetUtcNow();
            if (now - lastScan >= Options.RescanInterval)
            {
                lastScan = now;
                foreach (var f in Directory.EnumerateFiles(Layout.Root)) Notice(f);
            }
            foreach (var path in _candidates.Keys.ToList())
            {
                if (stoppingToken.IsCancellationRequested) break;
                if (IsStable(path, now)) await TakeAsync(path, stoppingToken).ConfigureAwait(false);
            }
            try
            {
                // Poll while files are settling; otherwise wait for the watcher or the next rescan.
                var wait = _candidates.IsEmpty ? Options.RescanInterval : TimeSpan.FromMilliseconds(Math.Max(20, Options.StableFor.TotalMilliseconds / 3));
                await _wake.WaitAsync(wait, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
    }

    private void Notice(string path)
    {
        if (FolderLayout.Ignored(Path.GetFileName(path)) || Path.GetDirectoryName(path) != Layout.Root) return;
        _candidates.TryAdd(path, 0);
        _wake.Release();
    }

    private bool IsStable(string path, DateTimeOffset now)
    {
        var info = new FileInfo(path);
        if (!info.Exists)
        {
            _candidates.TryRemove(path, out _);
            _sizes.Remove(path);
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
        _candidates.TryRemove(path, out _);
        _sizes.Remove(path);
        string claimed;
        try
        {
            claimed = FolderLayout.MoveInto(path, Layout.Processing); // atomic rename: one taker only
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return; // gone, or taken by another instance
        }
        await SubmitAsync(claimed, cancellationToken).ConfigureAwait(false);
    }

    private async Task RecoverAsync(CancellationToken cancellationToken)
    {
        var left = Directory.GetFiles(Layout.Processing).Order(StringComparer.Ordinal).ToList();
        if (left.Count == 0) return;
        Log.RecoveringFiles(logger, Layout.Root, left.Count);
        foreach (var f in left) await SubmitAsync(f, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Turns a claimed file into items: one for an image, one per image for a batch file.</summary>
    private async Task SubmitAsync(string claimed, CancellationToken cancellationToken)
    {
        var name = Path.GetFileName(claimed);
        var source = "folder";
        var receivedAt = time.GetUtcNow();
        List<IngestItem> items;
        FileDisposition disposition;
        try
        {
            var length = new FileInfo(claimed).Length;
            if (length > Options.MaxFileBytes)
                throw new InputRejectedException(name, RejectReason.TooLarge, $"{length} bytes exceeds the limit of {Options.MaxFileBytes}");
            if (IsBatchFile(name))
            {
                var load = DatasetLoader.Load(claimed, new DatasetOptions { Shape = holder.InputShape, Limits = DecodeLimits.Default with { MaxBytes = Options.MaxFileBytes, AllowResize = pipeline.Value.AllowResize } });
                if (load.Images.Count + load.Rejected.Count == 0)
                    throw new InputRejectedException(name, RejectReason.Empty, "the batch file holds no images");
                disposition = new FileDisposition(this, claimed, load.Images.Count + load.Rejected.Count);
                items = [];
                for (int i = 0; i < load.Images.Count; i++)
                {
                    items.Add(new IngestItem
                    {
                        Id = $"{name}#{load.Images.Ids[i].Split('#').Last()}",
                        Source = source,
                        ReceivedAt = receivedAt,
                        Pixels = load.Images.Image(i).ToArray(),
                        Completion = disposition,
                    });
                }
                foreach (var r in load.Rejected)
                {
                    metrics.Rejected.WithLabels(source, r.Reason.Name()).Inc();
                    metrics.Items.WithLabels(source, "rejected").Inc();
                    Log.Rejected(logger, $"{name}#{r.Item.Split('#').Last()}", source, r.Reason.Name(), r.Detail);
                    disposition.Complete(new IngestItem { Id = r.Item, Source = source }, new ItemResult(Outcome.Rejected, r.Reason, r.Detail));
                }
            }
            else
            {
                var bytes = await File.ReadAllBytesAsync(claimed, cancellationToken).ConfigureAwait(false);
                disposition = new FileDisposition(this, claimed, 1);
                items = [new IngestItem { Id = name, Source = source, ReceivedAt = receivedAt, Payload = bytes, Completion = disposition }];
            }
        }
        catch (InputRejectedException e)
        {
            RejectFile(claimed, source, e.Reason, e.Detail);
            return;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Log.FolderError(logger, claimed, e.Message);
            return; // stays in processing/, retried at the next start
        }
        foreach (var item in items)
        {
            if (!await queue.WriteAsync(item, cancellationToken).ConfigureAwait(false)) return; // shutdown: stays in processing/
        }
    }

    private void LogFolderError(string path, string reason) => Log.FolderError(logger, path, reason);

    private static bool IsBatchFile(string name)
    {
        var ext = Path.GetExtension(name).ToLowerInvariant();
        return ext is ".npz" or ".npy" || IdxReader.IsIdxPath(name);
    }

    private void RejectFile(string claimed, string source, RejectReason reason, string detail)
    {
        metrics.Rejected.WithLabels(source, reason.Name()).Inc();
        metrics.Items.WithLabels(source, "rejected").Inc();
        Log.Rejected(logger, Path.GetFileName(claimed), source, reason.Name(), detail);
        MoveToRejected(claimed, $"{Path.GetFileName(claimed)}: {reason.Name()}: {detail}");
    }

    private void MoveToRejected(string claimed, string reasonText)
    {
        try
        {
            var target = FolderLayout.MoveInto(claimed, Layout.Rejected);
            File.WriteAllText(target + ".reason.txt", reasonText + Environment.NewLine);
        }
        catch (IOException e)
        {
            Log.FolderError(logger, claimed, e.Message);
        }
    }

    /// <summary>Moves a claimed file once all of its items are done.</summary>
    private sealed class FileDisposition(FolderSource owner, string claimed, int count) : IItemCompletion
    {
        private readonly int _count = count;
        private int _remaining = count;
        private int _anomalies;
        private int _rejected;
        private volatile bool _handedBack;
        private string? _firstReason;

        public void Complete(IngestItem item, ItemResult result)
        {
            switch (result.Outcome)
            {
                case Outcome.Anomaly: Interlocked.Increment(ref _anomalies); break;
                case Outcome.HandedBack: _handedBack = true; break;
                case Outcome.Rejected:
                    Interlocked.Increment(ref _rejected);
                    Interlocked.CompareExchange(ref _firstReason, $"{item.Id}: {result.Reason?.Name()}: {result.Detail}", null);
                    break;
            }
            if (Interlocked.Decrement(ref _remaining) == 0) Finish();
        }

        public void Held(IngestItem item)
        {
            // The file stays in processing/ until its items are judged by the first model.
        }

        private void Finish()
        {
            if (_handedBack) return; // left in processing/: judged again at the next start
            try
            {
                if (_rejected == _count)
                {
                    owner.MoveToRejected(claimed, _firstReason ?? "rejected");
                }
                else if (owner.Options.DeleteProcessed)
                {
                    File.Delete(claimed);
                }
                else
                {
                    FolderLayout.MoveInto(claimed, _anomalies > 0 ? owner.Layout.Anomaly : owner.Layout.Normal);
                }
            }
            catch (IOException e)
            {
                owner.LogFolderError(claimed, e.Message);
            }
        }
    }
}
