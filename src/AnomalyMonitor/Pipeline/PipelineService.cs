using System.Threading.Channels;
using AnomalyMonitor.Evidence;
using AnomalyMonitor.Ingest;
using AnomalyMonitor.Sinks;
using AnomalyMonitor.State;
using AnomalyMonitor.Telemetry;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace AnomalyMonitor.Pipeline;

/// <summary>
/// Composes the stages, one way: queue → decode and batch (workers) → score and judge (a thread of its
/// own) → sinks → settle. Each hop is a small bounded channel, so a slow stage holds back the ones before
/// it and, through the queue, the sources. On shutdown the queue closes, what is queued drains, and what
/// is left when the hard deadline passes goes back to its source (left in processing/, or not acknowledged).
/// </summary>
public sealed class PipelineService(
    ItemQueue queue, DecodeStage decode, ScoringStage scoring, SinkStage sinks, BatchPool pool, Bootstrapper bootstrapper, EvidenceStore evidence,
    TimeProvider time, IOptions<PipelineOptions> pipelineOptions, IOptions<JudgeOptions> judgeOptions, IOptions<ServiceOptions> serviceOptions,
    ILogger<PipelineService> logger) : BackgroundService
{
    /// <summary>Images judged and durably recorded since start (tests and /api/status read it).</summary>
    public long Judged => sinks.Settled;

    public bool DriftActive => scoring.DriftActive;

    /// <summary>True while the scoring loop turns (the systemd watchdog is fed only then).</summary>
    public bool Alive => scoring.Alive;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var hard = new CancellationTokenSource();
        using var onStop = stoppingToken.Register(() =>
        {
            Log.ShuttingDown(logger, queue.Count);
            queue.Close();
            hard.CancelAfter(serviceOptions.Value.ShutdownTimeout * 0.75);
        });

        await Task.Yield();
        await bootstrapper.StartAsync(hard.Token).ConfigureAwait(false);
        scoring.Prepare();

        // Two batches ready: the scoring thread never waits for a decoder that is finishing the next one.
        var ready = Channel.CreateBounded<Batch>(new BoundedChannelOptions(2) { SingleReader = true });
        var judged = Channel.CreateBounded<JudgedBatch>(new BoundedChannelOptions(4) { SingleReader = true, SingleWriter = true });
        var workers = Enumerable.Range(0, Math.Max(1, pipelineOptions.Value.DecodeWorkers))
            .Select(_ => Task.Run(() => decode.RunWorkerAsync(ready.Writer, hard.Token), CancellationToken.None)).ToArray();
        var decoded = Task.WhenAll(workers).ContinueWith(_ => ready.Writer.TryComplete(), TaskScheduler.Default);
        var scored = RunScoringThread(ready.Reader, judged.Writer, hard.Token);
        var recorded = Task.Run(() => SinkLoopAsync(judged.Reader, hard.Token), CancellationToken.None);
        using var housekeeping = new PeriodicTimer(judgeOptions.Value.SaveInterval, time);
        var housekeepingTask = HousekeepingAsync(housekeeping, hard.Token);
        try
        {
            await scored.ConfigureAwait(false);
        }
        finally
        {
            await decoded.ConfigureAwait(false);
            judged.Writer.TryComplete();
            await recorded.ConfigureAwait(false); // what was judged is recorded before anything is handed back
            HandBackQueued();
            housekeeping.Dispose();
            try { await housekeepingTask.ConfigureAwait(false); } catch (OperationCanceledException) { }
        }
    }

    /// <summary>Scoring runs on a dedicated thread: torch's intra-op thread count is per thread, and the loop never yields it to other work.</summary>
    private Task RunScoringThread(ChannelReader<Batch> ready, ChannelWriter<JudgedBatch> judged, CancellationToken hard)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            try
            {
                scoring.Run(ready, judged, hard);
                done.SetResult();
            }
            catch (Exception e)
            {
                done.SetException(e);
            }
            finally
            {
                judged.TryComplete();
            }
        }) { IsBackground = true, Name = "scoring" };
        thread.Start();
        return done.Task;
    }

    /// <summary>Records each judged batch, settles its images, and gives its buffer back to the decoders.</summary>
    private async Task SinkLoopAsync(ChannelReader<JudgedBatch> judged, CancellationToken hard)
    {
        await foreach (var batch in judged.ReadAllAsync(CancellationToken.None).ConfigureAwait(false))
        {
            await sinks.WriteAsync(batch, hard).ConfigureAwait(false);
            if (batch.Batch is { } owned) pool.Return(owned);
        }
    }

    private void HandBackQueued()
    {
        while (queue.Reader.TryRead(out var item)) item.HandBack("the service stopped before the item was decoded", stopping: true);
    }

    private async Task HousekeepingAsync(PeriodicTimer timer, CancellationToken cancellationToken)
    {
        // The evidence writer prunes on its own thread, at its own (lower) priority.
        while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false)) evidence.RequestPrune();
    }
}
