using System.Diagnostics;
using System.Runtime.CompilerServices;
using AnomalyMonitor.Ingest;
using AnomalyMonitor.Pipeline;
using AnomalyMonitor.Telemetry;
using Microsoft.Extensions.Logging;

namespace AnomalyMonitor.Sinks;

/// <summary>
/// Runs every sink over each judged batch, then settles the batch's images with their items (and, when an
/// item's last image is settled, with its source: file move, MQTT acknowledgement, HTTP answer): an image
/// is acknowledged only after every durable sink recorded it. Sinks run in waves: a sink that reads what
/// earlier ones wrote (<see cref="IVerdictSink.ReadsEarlierSinks"/>) waits for them; the others of a wave
/// run side by side. A durable sink that waits out a storage failure holds the stage, and so the pipeline,
/// until it writes again or the service stops; then the batch is handed back, never acknowledged.
/// </summary>
public sealed class SinkStage(IEnumerable<IVerdictSink> registered, MonitorMetrics metrics, ILogger<SinkStage> logger)
{
    private readonly IVerdictSink[][] _waves = Waves(registered);
    private readonly Dictionary<IVerdictSink, StrongBox<long>> _sinkTicks = registered.ToDictionary(s => s, _ => new StrongBox<long>());
    private long _settled;
    private long _ticks;

    /// <summary>Stopwatch ticks each sink spent writing, by its class name (the benchmark's per-sink costs).</summary>
    public IReadOnlyList<(string Sink, long Ticks)> SinkTicks => [.. _sinkTicks.Select(p => (p.Key.GetType().Name, Interlocked.Read(ref p.Value.Value)))];

    /// <summary>Images judged and settled since start.</summary>
    public long Settled => Interlocked.Read(ref _settled);

    /// <summary>Stopwatch ticks spent in the sinks and settling (the benchmark's per-stage costs).</summary>
    public long Ticks => Interlocked.Read(ref _ticks);

    /// <summary>False when the batch was handed back (the service stopped while a durable sink waited, or a sink failed).</summary>
    public async ValueTask<bool> WriteAsync(JudgedBatch batch, CancellationToken cancellationToken)
    {
        long started = Stopwatch.GetTimestamp();
        foreach (var wave in _waves)
        {
            // The first sink of a wave runs on this thread, the others beside it on the pool.
            var others = wave.Length == 1 ? [] : wave[1..].Select(s => Task.Run(() => RunAsync(s, batch, cancellationToken).AsTask(), CancellationToken.None)).ToArray();
            string? failure = await RunAsync(wave[0], batch, cancellationToken).ConfigureAwait(false);
            foreach (var other in others)
            {
                var f = await other.ConfigureAwait(false); // all of them, before the batch can be handed back or reused
                failure ??= f;
            }
            if (failure is not null)
            {
                HandBack(batch, failure, stopping: failure == StoppedReason);
                return false;
            }
        }
        Settle(batch);
        Interlocked.Add(ref _ticks, Stopwatch.GetTimestamp() - started);
        return true;
    }

    /// <summary>Null when the sink wrote (or, not durable, failed and was skipped); otherwise why the batch goes back.</summary>
    private async ValueTask<string?> RunAsync(IVerdictSink sink, JudgedBatch batch, CancellationToken cancellationToken)
    {
        long started = Stopwatch.GetTimestamp();
        try
        {
            await sink.WriteAsync(batch, cancellationToken).ConfigureAwait(false);
            return null;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return StoppedReason;
        }
        catch (Exception e) when (!sink.Durable && e is not OutOfMemoryException)
        {
            Log.SinkFailed(logger, sink.GetType().Name, $"{batch.Count} item(s)", e.Message);
            return null;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Not a storage error (those are waited out): a bug. The images go back to their sources to be retried.
            Log.BatchFailed(logger, e, batch.Count);
            return e.Message;
        }
        finally
        {
            Interlocked.Add(ref _sinkTicks[sink].Value, Stopwatch.GetTimestamp() - started);
        }
    }

    private void Settle(JudgedBatch batch)
    {
        for (int i = 0; i < batch.Count; i++)
        {
            var image = batch.Images[i];
            var item = image.Item;
            metrics.Latency.Observe(Stopwatch.GetElapsedTime(item.ArrivalTimestamp).TotalSeconds);
            var v = batch.Verdicts[i];
            var verdict = item.KeepVerdicts
                ? new ImageVerdict(image.Id, v.Judgement.Score, v.Judgement.Threshold, v.Judgement.ZScore, v.IsAnomaly, batch.ModelVersion, batch.ScoreKind)
                : null;
            item.Judge(v.IsAnomaly, verdict, image.WasHeld);
        }
        Interlocked.Add(ref _settled, batch.Count);
    }

    private const string StoppedReason = "the service stopped before the batch was recorded";

    private static void HandBack(JudgedBatch batch, string reason, bool stopping)
    {
        foreach (var image in batch.Images) image.Item.HandBack(reason, image.WasHeld, stopping);
    }

    private static IVerdictSink[][] Waves(IEnumerable<IVerdictSink> sinks)
    {
        var waves = new List<IVerdictSink[]>();
        var wave = new List<IVerdictSink>();
        foreach (var sink in sinks)
        {
            if (sink.ReadsEarlierSinks && wave.Count > 0)
            {
                waves.Add([.. wave]);
                wave.Clear();
            }
            wave.Add(sink);
        }
        if (wave.Count > 0) waves.Add([.. wave]);
        return [.. waves];
    }
}
