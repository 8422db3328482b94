using System.Buffers;
using System.Diagnostics;
using System.Threading.Channels;
using AnomalyMonitor.Core.Data;
using AnomalyMonitor.Core.Imaging;
using AnomalyMonitor.Core.Scoring;
using AnomalyMonitor.Evidence;
using AnomalyMonitor.Ingest;
using AnomalyMonitor.Samples;
using AnomalyMonitor.Sinks;
using AnomalyMonitor.State;
using AnomalyMonitor.Telemetry;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace AnomalyMonitor.Pipeline;

/// <summary>
/// queue → decode (workers, pooled buffers) → micro-batch (size/time) → score (no_grad) → judge → sinks.
/// One scoring loop owns the model, the judge and the sinks' ordering; decoding runs beside it.
/// </summary>
public sealed partial class PipelineService(
    ItemQueue queue, ModelHolder holder, Bootstrapper bootstrapper, JudgeStateStore judgeState, SinkStage sinkStage, DurableWrite durable,
    EvidenceStore evidence, NormalSampleStore normals, MonitorMetrics metrics, TimeProvider time,
    IOptions<PipelineOptions> pipelineOptions, IOptions<JudgeOptions> judgeOptions, IOptions<ServiceOptions> serviceOptions,
    ILogger<PipelineService> logger) : BackgroundService
{
    private readonly PipelineOptions _options = pipelineOptions.Value;
    private readonly DecodeLimits _limits = DecodeLimits.Default with { AllowResize = pipelineOptions.Value.AllowResize };
    private readonly Channel<Decoded> _decoded = Channel.CreateBounded<Decoded>(new BoundedChannelOptions(Math.Max(2 * pipelineOptions.Value.MaxBatchSize, 8))
    {
        FullMode = BoundedChannelFullMode.Wait,
        SingleReader = true,
    });
    private readonly DriftDetector _drift = new(judgeOptions.Value.Drift, time);
    private readonly Channel<JudgedBatch> _sinks = Channel.CreateBounded<JudgedBatch>(new BoundedChannelOptions(4) { SingleReader = true, SingleWriter = true });
    private readonly List<Decoded> _held = [];
    private long _heartbeat = Stopwatch.GetTimestamp();

    /// <summary>Items judged and durably recorded since start (tests and /api/status read it).</summary>
    public long Judged => sinkStage.Settled;

    public bool DriftActive => _drift.Active;

    /// <summary>Test hook: runs before each batch is scored; an exception it returns fails the batch, as a libtorch error would.</summary>
    internal Func<IReadOnlyList<Decoded>, Exception?>? BeforeScoring { get; set; }

    /// <summary>True while the loop turns (the systemd watchdog is fed only then).</summary>
    public bool Alive => Stopwatch.GetElapsedTime(Interlocked.Read(ref _heartbeat)) < TimeSpan.FromSeconds(30) || bootstrapper.Training;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // On shutdown the queue closes, what is queued drains, and whatever is left when the hard deadline
        // passes is handed back to its source (left in processing/, or not acknowledged to the broker).
        using var hard = new CancellationTokenSource();
        using var onStop = stoppingToken.Register(() =>
        {
            Log.ShuttingDown(logger, queue.Count + _decoded.Reader.Count);
            queue.Close();
            hard.CancelAfter(serviceOptions.Value.ShutdownTimeout * 0.75);
        });

        await Task.Yield();
        await bootstrapper.StartAsync(hard.Token).ConfigureAwait(false);
        if (holder.IsJudging) RestoreWindow();
        else _held.AddRange(bootstrapper.RestoreHeld());
        SetState();

        var workers = Enumerable.Range(0, Math.Max(1, _options.DecodeWorkers)).Select(_ => Task.Run(() => DecodeAsync(hard.Token), CancellationToken.None)).ToArray();
        var decodersDone = Task.WhenAll(workers).ContinueWith(_ => _decoded.Writer.TryComplete(), TaskScheduler.Default);
        using var housekeeping = new PeriodicTimer(judgeOptions.Value.SaveInterval, time);
        var housekeepingTask = HousekeepingAsync(housekeeping, hard.Token);
        var sinkTask = Task.Run(() => SinkLoopAsync(hard.Token), CancellationToken.None);
        try
        {
            await ScoreLoopAsync(hard.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (hard.IsCancellationRequested)
        {
        }
        finally
        {
            await decodersDone.ConfigureAwait(false);
            _sinks.Writer.TryComplete();
            await sinkTask.ConfigureAwait(false); // what was judged is recorded before anything is handed back
            HandBackRemaining();
            SaveWindow();
            housekeeping.Dispose();
            try { await housekeepingTask.ConfigureAwait(false); } catch (OperationCanceledException) { }
        }
    }

    private async Task DecodeAsync(CancellationToken cancellationToken)
    {
        try
        {
            await foreach (var item in queue.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                metrics.QueueDepth.Set(queue.Count);
                var decoded = Decode(item);
                if (decoded is { } d && !await TryWriteDecodedAsync(d, cancellationToken).ConfigureAwait(false))
                    d.Release(ItemResult.HandedBack);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async ValueTask<bool> TryWriteDecodedAsync(Decoded d, CancellationToken cancellationToken)
    {
        try
        {
            await _decoded.Writer.WriteAsync(d, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (Exception e) when (e is OperationCanceledException or ChannelClosedException)
        {
            return false;
        }
    }

    private Decoded? Decode(IngestItem item)
    {
        var shape = holder.InputShape;
        try
        {
            if (item.Pixels is { } ready)
            {
                if (ready.Length != shape.PixelCount)
                    throw new InputRejectedException(item.Id, RejectReason.WrongDimensions, $"{ready.Length} values, the model takes {shape}");
                return new Decoded(item, ready, false);
            }
            var buffer = ArrayPool<float>.Shared.Rent(shape.PixelCount);
            try
            {
                ImageDecoder.Decode(item.Payload.Span, item.Id, shape, _limits, buffer);
                return new Decoded(item, buffer, true);
            }
            catch
            {
                ArrayPool<float>.Shared.Return(buffer);
                throw;
            }
        }
        catch (InputRejectedException e)
        {
            Reject(item, e.Reason, e.Detail);
            return null;
        }
        catch (Exception e) when (e is ArgumentException or FormatException)
        {
            Reject(item, RejectReason.Corrupt, e.Message);
            return null;
        }
    }

    private void Reject(IngestItem item, RejectReason reason, string detail)
    {
        metrics.CountRejected(item.Source, reason);
        Log.Rejected(logger, item.Id, item.Source, reason.Name(), detail);
        item.Complete(new ItemResult(Outcome.Rejected, reason, detail));
    }

    private async Task ScoreLoopAsync(CancellationToken cancellationToken)
    {
        var reader = _decoded.Reader;
        var batch = new List<Decoded>(_options.MaxBatchSize);
        while (true)
        {
            Interlocked.Exchange(ref _heartbeat, Stopwatch.GetTimestamp());
            // Between batches: the only place a promoted or rolled-back model is swapped in.
            if (holder.ApplyPending())
            {
                SaveWindow();
                await EndDriftForNewModelAsync(cancellationToken).ConfigureAwait(false);
            }
            SaveWindowPeriodically();
            // Wake at least every few seconds so the heartbeat (and the watchdog) stays fresh when idle, and at once for a new model.
            using (var idle = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, holder.Offered))
            {
                idle.CancelAfter(TimeSpan.FromSeconds(5));
                try
                {
                    if (!await reader.WaitToReadAsync(idle.Token).ConfigureAwait(false)) return;
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    continue;
                }
            }
            await FillBatchAsync(reader, batch, cancellationToken).ConfigureAwait(false);
            if (batch.Count == 0) continue;
            try
            {
                if (BeforeScoring?.Invoke(batch) is { } fault) throw fault;
                if (holder.IsJudging) await ScoreAndJudgeAsync(batch, cancellationToken).ConfigureAwait(false);
                else await LearnAsync(batch, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                Log.BatchFailed(logger, e, batch.Count);
                foreach (var d in batch) d.Release(ItemResult.HandBack(e.Message));
            }
            batch.Clear();
        }
    }

    /// <summary>Takes what is ready, then waits up to MaxBatchWait for more, up to MaxBatchSize.</summary>
    private async Task FillBatchAsync(ChannelReader<Decoded> reader, List<Decoded> batch, CancellationToken cancellationToken)
    {
        int max = holder.IsJudging ? _options.MaxBatchSize : int.MaxValue;
        while (batch.Count < max && reader.TryRead(out var d)) batch.Add(d);
        if (batch.Count >= max || _options.MaxBatchWait <= TimeSpan.Zero || !holder.IsJudging) return;
        using var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        wait.CancelAfter(_options.MaxBatchWait);
        try
        {
            while (batch.Count < max && await reader.WaitToReadAsync(wait.Token).ConfigureAwait(false))
            {
                while (batch.Count < max && reader.TryRead(out var d)) batch.Add(d);
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
        }
    }
}
