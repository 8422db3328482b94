using AnomalyMonitor.Core.Runtime;
using AnomalyMonitor.State;
using AnomalyMonitor.Telemetry;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace AnomalyMonitor.Ingest;

/// <summary>
/// Keeps processed/, rejected/ and state/quarantine within Ingest:Retention, at start and every Interval, on a
/// thread of its own at nice 10: deleting is journal-bound I/O, and the verdicts come first.
/// </summary>
public sealed class RetentionService(
    IOptions<IngestOptions> ingest, PathResolver paths, Quarantine quarantine, MonitorMetrics metrics, TimeProvider time,
    ILogger<RetentionService> logger) : BackgroundService
{
    private const int Nice = 10;

    /// <summary>Passes completed since start (what a test waits for).</summary>
    public long Passes => Interlocked.Read(ref _passes);
    private long _passes;

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        Task.Factory.StartNew(() => Run(stoppingToken), stoppingToken, TaskCreationOptions.LongRunning, TaskScheduler.Default);

    private void Run(CancellationToken stoppingToken)
    {
        if (!ThreadNice.TrySetCurrent(Nice)) Log.NiceNotSet(logger, "retention", Nice);
        var o = ingest.Value.Retention;
        using var timer = new PeriodicTimer(o.Interval, time);
        try
        {
            do
            {
                SweepAll();
                Interlocked.Increment(ref _passes);
            }
            while (timer.WaitForNextTickAsync(stoppingToken).AsTask().GetAwaiter().GetResult());
        }
        catch (OperationCanceledException) { }
    }

    /// <summary>One pass over each kept folder.</summary>
    public void SweepAll()
    {
        var o = ingest.Value.Retention;
        var layout = new FolderLayout(paths.Resolve(ingest.Value.Folder.Path));
        Sweep("processed", Path.GetDirectoryName(layout.Normal)!, o.Processed);
        Sweep("rejected", layout.Rejected, o.Rejected);
        Sweep("quarantine", quarantine.Folder, o.Quarantine);
    }

    private void Sweep(string name, string folder, KeptFolderOptions options)
    {
        RetentionPass pass;
        try
        {
            pass = KeptFolder.Prune(folder, options, time.GetUtcNow().UtcDateTime);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            Log.RetentionFailed(logger, folder, 1, e.Message);
            return;
        }
        metrics.RetentionDeletedFiles.WithLabels(name).Inc(pass.DeletedFiles);
        metrics.RetentionDeletedBytes.WithLabels(name).Inc(pass.DeletedBytes);
        metrics.RetentionKeptBytes.WithLabels(name).Set(pass.KeptBytes);
        if (pass.DeletedFiles > 0) Log.RetentionPruned(logger, pass.DeletedFiles, pass.DeletedBytes, folder, pass.KeptBytes);
        if (pass.Failures > 0) Log.RetentionFailed(logger, folder, pass.Failures, pass.FirstError ?? "");
    }
}
