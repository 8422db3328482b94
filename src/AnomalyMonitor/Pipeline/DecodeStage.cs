using System.Diagnostics;
using System.Threading.Channels;
using AnomalyMonitor.Core.Imaging;
using AnomalyMonitor.Ingest;
using AnomalyMonitor.Pipeline.Decoding;
using AnomalyMonitor.Telemetry;
using Microsoft.Extensions.Options;

namespace AnomalyMonitor.Pipeline;

/// <summary>
/// Decode and batch: each worker takes items from the queue, finds their images and decodes each straight
/// into the next slot of a batch of its own, and hands the batch to the scoring thread when it is full or
/// when its first image has waited Pipeline:MaxBatchWait. A refused image is recorded through the intake,
/// once; the others go on.
/// </summary>
public sealed class DecodeStage(ItemQueue queue, Intake intake, ModelHolder holder, BatchPool pool, IOptions<PipelineOptions> pipelineOptions, MonitorMetrics metrics)
{
    private readonly PipelineOptions _options = pipelineOptions.Value;
    private readonly DecodeLimits _limits = DecodeLimits.Default with { AllowResize = pipelineOptions.Value.AllowResize };

    /// <summary>Time the workers spent finding and decoding images (not waiting), in Stopwatch ticks (the benchmark's per-stage costs).</summary>
    public long DecodeTicks => Interlocked.Read(ref _decodeTicks);
    private long _decodeTicks;

    /// <summary>Test hook: an exception it returns for an item is thrown where its images are found, as a reader's bug would be.</summary>
    internal Func<IngestItem, Exception?>? FindFault { get; set; }

    /// <summary>Runs one worker until the queue is closed and empty, or <paramref name="hard"/> is cancelled.</summary>
    public async Task RunWorkerAsync(ChannelWriter<Batch> ready, CancellationToken hard)
    {
        Batch? batch = null;
        try
        {
            while (true)
            {
                if (!queue.Reader.TryRead(out var item))
                {
                    if (batch is { Count: > 0 })
                    {
                        // A partial batch waits for company at most MaxBatchWait after its first image.
                        var left = _options.MaxBatchWait - Stopwatch.GetElapsedTime(batch.Started);
                        if (left > TimeSpan.Zero && await WaitForItemAsync(left, hard).ConfigureAwait(false)) continue;
                        // Due. With room at the scorer it goes at once; while the scorer is busy it keeps filling
                        // instead of waiting half empty in line, so a backlog is scored in full batches.
                        if (!ready.TryWrite(batch))
                        {
                            if (await WaitForRoomOrItemAsync(ready, hard).ConfigureAwait(false)) continue; // an item joins it
                            await ready.WriteAsync(batch, hard).ConfigureAwait(false); // room now, or the queue is closed
                        }
                        batch = null;
                        continue;
                    }
                    if (!await queue.Reader.WaitToReadAsync(hard).ConfigureAwait(false)) break; // closed and empty: shutdown
                    continue;
                }
                metrics.QueueDepth.Set(queue.Count);
                var filling = batch;
                batch = null; // DecodeAsync hands it back itself if it is cancelled
                batch = await DecodeAsync(item, filling, ready, hard).ConfigureAwait(false);
            }
            if (batch is { Count: > 0 }) await ready.WriteAsync(batch, hard).ConfigureAwait(false);
            else if (batch is not null) pool.Return(batch);
        }
        catch (Exception e) when (e is OperationCanceledException or ChannelClosedException)
        {
            if (batch is not null) pool.HandBack(batch, "the service stopped before the batch was scored", stopping: true);
        }
    }

    private async Task<bool> WaitForItemAsync(TimeSpan within, CancellationToken hard)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(hard);
        timeout.CancelAfter(within);
        try
        {
            return await queue.Reader.WaitToReadAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!hard.IsCancellationRequested)
        {
            return false;
        }
    }

    /// <summary>
    /// Waits until the scorer has room for a batch or another item is queued, whichever comes first; false when
    /// the batch should be handed on now (room, or the queue is closed), true when an item can join it.
    /// </summary>
    private async Task<bool> WaitForRoomOrItemAsync(ChannelWriter<Batch> ready, CancellationToken hard)
    {
        using var either = CancellationTokenSource.CreateLinkedTokenSource(hard);
        var room = ready.WaitToWriteAsync(either.Token).AsTask();
        var item = queue.Reader.WaitToReadAsync(either.Token).AsTask();
        var first = await Task.WhenAny(room, item).ConfigureAwait(false);
        await either.CancelAsync().ConfigureAwait(false);
        hard.ThrowIfCancellationRequested();
        if (first == room) return false;
        return await item.ConfigureAwait(false); // false: closed and empty, so nothing will join
    }

    /// <summary>Decodes every image of an item into batches, handing on each one that fills; returns the batch still filling.</summary>
    private async Task<Batch?> DecodeAsync(IngestItem item, Batch? batch, ChannelWriter<Batch> ready, CancellationToken hard)
    {
        var shape = holder.InputShape;
        if (batch is not null && batch.Shape != shape)
        {
            // The model changed its input size: what was decoded for the old one is scored (and refused) on its own.
            await ready.WriteAsync(batch, hard).ConfigureAwait(false);
            batch = null;
        }
        long started = Stopwatch.GetTimestamp();
        IReadOnlyList<FoundImage> found;
        try
        {
            if (FindFault?.Invoke(item) is { } fault) throw fault;
            found = PayloadDecoder.Find(item, shape, _limits);
            Interlocked.Add(ref _decodeTicks, Stopwatch.GetTimestamp() - started);
        }
        catch (InputRejectedException e)
        {
            intake.RejectWhole(item, e.Reason, e.Detail);
            return batch;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            intake.RejectWhole(item, RejectReason.Unreadable, e.Message);
            return batch;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // A reader's own bug on some input (an exception it did not turn into a refusal) refuses that item,
            // not the worker: an escaped exception would end the worker and strand its batch, and a few such
            // inputs would stop all decoding.
            intake.RejectWhole(item, Unexpected(e), $"{e.GetType().Name}: {e.Message}");
            return batch;
        }
        item.AddImages(found.Count);
        int next = 0;
        try
        {
            while (next < found.Count)
            {
                var image = found[next];
                batch ??= await pool.RentAsync(shape, hard).ConfigureAwait(false);
                started = Stopwatch.GetTimestamp();
                try
                {
                    PayloadDecoder.DecodeInto(item, image, shape, _limits, batch.Next());
                    batch.Commit(new ImageRef(item, image.Id, image.Source, image.Metadata));
                }
                catch (InputRejectedException e)
                {
                    intake.Reject(item, image.Id, image.Source, e.Reason, e.Detail, PayloadDecoder.BytesOf(item, image));
                }
                catch (Exception e) when (e is ArgumentException or FormatException)
                {
                    intake.Reject(item, image.Id, image.Source, RejectReason.Corrupt, e.Message, PayloadDecoder.BytesOf(item, image));
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    intake.Reject(item, image.Id, image.Source, Unexpected(e), $"{e.GetType().Name}: {e.Message}", PayloadDecoder.BytesOf(item, image));
                }
                Interlocked.Add(ref _decodeTicks, Stopwatch.GetTimestamp() - started);
                next++; // this image is now in the batch or refused: from here on, the batch speaks for it
                if (batch.IsFull)
                {
                    var full = batch;
                    batch = null;
                    try
                    {
                        await ready.WriteAsync(full, hard).ConfigureAwait(false);
                    }
                    catch
                    {
                        batch = full;
                        throw;
                    }
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ChannelClosedException)
        {
            // Stopping: what was decoded and what was not go back to the source together.
            const string Reason = "the service stopped before the item was judged";
            if (batch is not null) pool.HandBack(batch, Reason, stopping: true);
            for (; next < found.Count; next++) item.HandBack(Reason, stopping: true);
            item.Decoded();
            throw;
        }
        item.Decoded();
        return batch;
    }

    // An allocation too large for the machine is the input's size, whatever the reader made of it.
    private static RejectReason Unexpected(Exception e) => e is OutOfMemoryException ? RejectReason.TooLarge : RejectReason.Corrupt;
}
