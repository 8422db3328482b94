using System.Diagnostics;
using System.Threading.Channels;
using AnomalyMonitor.Alerts;
using AnomalyMonitor.Core.Imaging;
using AnomalyMonitor.Core.Scoring;
using AnomalyMonitor.Core.Thresholds;
using AnomalyMonitor.Ingest;
using AnomalyMonitor.Pipeline.Scoring;
using AnomalyMonitor.Samples;
using AnomalyMonitor.State;
using AnomalyMonitor.Telemetry;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace AnomalyMonitor.Pipeline;

/// <summary>
/// Score and judge, on a thread of its own (torch's thread count belongs to the thread that runs it): takes
/// decoded batches, scores them, judges each image against the rolling threshold, notes a sustained shift,
/// and hands the judged batch to the sinks. Between batches it installs a promoted or rolled-back model and
/// saves the judge's window. With no model yet (learning), it holds the images durably instead, trains the
/// first model when it has enough, and then judges them all.
/// </summary>
public sealed class ScoringStage(
    ModelHolder holder, Bootstrapper bootstrapper, NormalSampleStore normals, DurableWrite durable, JudgeStateStore judgeState, BatchPool pool,
    MonitorMetrics metrics, TimeProvider time, IOptions<PipelineOptions> pipelineOptions, IOptions<JudgeOptions> judgeOptions, ILogger<ScoringStage> logger)
{
    private readonly PipelineOptions _options = pipelineOptions.Value;
    private readonly DriftDetector _drift = new(judgeOptions.Value.Drift, time);
    private readonly List<(ImageRef Image, float[] Pixels)> _held = [];
    private ScoreOutput? _output;
    private ScoringLane[]? _lanes;
    private readonly ScoreOutput?[] _laneOutputs = new ScoreOutput?[2];
    private long _heartbeat = Stopwatch.GetTimestamp();
    private long _lastSave = Stopwatch.GetTimestamp();
    private Task _saving = Task.CompletedTask;
    private long _scoreTicks;

    /// <summary>True while the loop turns (or the first model trains): the systemd watchdog is fed only then.</summary>
    public bool Alive => Stopwatch.GetElapsedTime(Interlocked.Read(ref _heartbeat)) < TimeSpan.FromSeconds(30) || bootstrapper.Training;

    public bool DriftActive => _drift.Active;

    /// <summary>Stopwatch ticks spent scoring and judging (the benchmark's per-stage costs).</summary>
    public long ScoreTicks => Interlocked.Read(ref _scoreTicks);

    /// <summary>Test hook: runs before each batch is scored; an exception it returns fails the batch, as a libtorch error would.</summary>
    internal Func<IReadOnlyList<ImageRef>, Exception?>? BeforeScoring { get; set; }

    /// <summary>How long two lanes go on taking batches before the loop lets a model swap or a save in; tests lengthen it.</summary>
    internal TimeSpan LaneWindow { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Restores the judge's window, or the images held for the first model, after a restart.</summary>
    public void Prepare()
    {
        if (holder.IsJudging) RestoreWindow();
        else _held.AddRange(bootstrapper.RestoreHeld().Select(h => (h.Image, h.Pixels)));
        SetState();
    }

    /// <summary>The loop: runs on its own thread until the decoders are done and every batch is through, or <paramref name="hard"/> is cancelled.</summary>
    public void Run(ChannelReader<Batch> ready, ChannelWriter<JudgedBatch> sinks, CancellationToken hard)
    {
        try
        {
            while (true)
            {
                Interlocked.Exchange(ref _heartbeat, Stopwatch.GetTimestamp());
                // Between batches: the only place a promoted or rolled-back model is swapped in.
                if (holder.ApplyPending())
                {
                    SaveWindow();
                    EndDriftForNewModel(sinks, hard);
                }
                SaveWindowPeriodically();
                if (holder.IsJudging && _held.Count > 0) JudgeHeld(sinks, hard);
                if (!WaitForBatch(ready, hard)) break;
                if (!ready.TryRead(out var batch)) continue;
                if (holder.IsJudging)
                {
                    try
                    {
                        if (holder.SideScorer is not null) ScoreOnLanes(batch, ready, sinks, hard);
                        else JudgeAndWrite(batch, sinks, hard);
                    }
                    catch (Exception e) when (e is not OperationCanceledException)
                    {
                        Log.BatchFailed(logger, e, batch.Count); // scoring failures were handled inside: the batches are with the sinks
                    }
                    continue;
                }
                bool owned = true; // until the batch is handed on: on a failure, its images go back to their sources
                try
                {
                    if (BeforeScoring?.Invoke(batch.Images.AsSpan(0, batch.Count).ToArray()) is { } fault) throw fault;
                    owned = false;
                    Learn(batch, hard);
                }
                catch (OperationCanceledException) when (owned)
                {
                    pool.HandBack(batch, Stopped, stopping: true);
                    throw;
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    Log.BatchFailed(logger, e, batch.Count);
                    if (owned) pool.HandBack(batch, e.Message);
                }
            }
        }
        catch (OperationCanceledException) when (hard.IsCancellationRequested)
        {
        }
        finally
        {
            if (_lanes is not null) foreach (var lane in _lanes) lane.Dispose();
            _lanes = null;
            while (ready.TryRead(out var left)) pool.HandBack(left, Stopped, stopping: true);
            foreach (var (image, _) in _held) image.Item.HandBack("the service stopped before the first model was trained", wasHeld: true, stopping: true);
            _held.Clear();
            SaveWindow();
        }
    }

    /// <summary>Waits for the next batch, waking at least every few seconds (the heartbeat), and at once for a new model.</summary>
    private bool WaitForBatch(ChannelReader<Batch> ready, CancellationToken hard)
    {
        using var idle = CancellationTokenSource.CreateLinkedTokenSource(hard, holder.Offered);
        idle.CancelAfter(TimeSpan.FromSeconds(5));
        try
        {
            return ready.WaitToReadAsync(idle.Token).AsTask().GetAwaiter().GetResult();
        }
        catch (OperationCanceledException) when (!hard.IsCancellationRequested)
        {
            return true; // woken: go round (install a model, save the window, beat the heart)
        }
    }

    internal const string Stopped = "the service stopped before the batch was scored";

    /// <summary>Hands a judged batch to the sinks; if the service stops while they are full, its images go back to their sources.</summary>
    private void Write(ChannelWriter<JudgedBatch> sinks, JudgedBatch judged, CancellationToken hard)
    {
        try
        {
            sinks.WriteAsync(judged, hard).AsTask().GetAwaiter().GetResult();
        }
        catch (OperationCanceledException)
        {
            if (judged.Batch is { } batch) pool.HandBack(batch, Stopped, stopping: true);
            throw;
        }
    }

    /// <summary>One lane: scores the batch on this thread, then judges it and hands it on (or back, if its scoring failed).</summary>
    private void JudgeAndWrite(Batch batch, ChannelWriter<JudgedBatch> sinks, CancellationToken hard)
    {
        long started = Stopwatch.GetTimestamp();
        Exception? error;
        try
        {
            error = Check(batch);
            if (error is null)
            {
                _output = OutputFor(batch, _output);
                holder.ApplyScoringThreads(batch.Count);
                holder.Scorer!.Score(batch, _output, EvidenceCut());
            }
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            error = e;
        }
        long scored = Stopwatch.GetTimestamp();
        Interlocked.Add(ref _scoreTicks, scored - started);
        Hand(batch, error, holder.Scorer!, _output, Stopwatch.GetElapsedTime(started, scored).TotalSeconds, sinks, hard);
    }

    /// <summary>A batch being scored on a lane (or refused before it got one), in the order it came.</summary>
    private sealed record Flight(Batch Batch, int Lane, Exception? Error);

    /// <summary>
    /// Two lanes: each batch goes to whichever lane is free the moment it is ready, and this thread judges
    /// the batches in the order they came. A batch that is ready while the other lane scores no longer waits
    /// for that one to finish: a live flood keeps both lanes busy, not only a backlog (docs/benchmarks.md, 4b,
    /// "Lanes that take batches as they come"). Returns once
    /// nothing is in flight, so that model swaps, window saves and the heartbeat still fall between batches:
    /// it stops taking new ones after a second, or as soon as a model is offered.
    /// </summary>
    private void ScoreOnLanes(Batch first, ChannelReader<Batch> ready, ChannelWriter<JudgedBatch> sinks, CancellationToken hard)
    {
        _lanes ??= [new ScoringLane("scoring lane 1"), new ScoringLane("scoring lane 2")];
        holder.ApplyLaneThreads(); // this thread still reconstructs the anomalies of the latent score, beside a lane
        long entered = Stopwatch.GetTimestamp();
        var flights = new Queue<Flight>(2);
        bool closed = false;
        long landed = 0; // judging is counted by Hand, and a wait on full sinks is not scoring
        try
        {
            flights.Enqueue(Launch(first, flights));
            while (flights.Count > 0)
            {
                var head = flights.Peek();
                if (head.Lane < 0 || _lanes[head.Lane].IsDone)
                {
                    flights.Dequeue();
                    long landing = Stopwatch.GetTimestamp();
                    Land(head, sinks, hard);
                    landed += Stopwatch.GetTimestamp() - landing;
                    continue;
                }
                bool taking = !closed && flights.Count < _lanes.Length && !holder.HasPending && Stopwatch.GetElapsedTime(entered) < LaneWindow;
                if (taking && ready.TryRead(out var next))
                {
                    flights.Enqueue(Launch(next, flights));
                    continue;
                }
                closed |= !WaitForLaneOrBatch(_lanes[head.Lane], taking ? ready : null, hard);
            }
        }
        catch (Exception e)
        {
            // What is still in flight goes back to its sources once its lane lets go of its buffer.
            bool stopping = e is OperationCanceledException;
            foreach (var flight in flights)
            {
                if (flight.Lane >= 0) _lanes[flight.Lane].Wait();
                pool.HandBack(flight.Batch, stopping ? Stopped : e.Message, stopping);
            }
            throw;
        }
        finally
        {
            Interlocked.Add(ref _scoreTicks, Stopwatch.GetTimestamp() - entered - landed);
        }
    }

    /// <summary>Starts a batch on the free lane; a batch that cannot be scored (the test hook's fault, another shape) gets no lane.</summary>
    private Flight Launch(Batch batch, Queue<Flight> flights)
    {
        Exception? error;
        try { error = Check(batch); }
        catch (Exception e) when (e is not OutOfMemoryException) { error = e; }
        if (error is not null) return new Flight(batch, -1, error);
        bool otherBusy = false;
        int lane = 0;
        foreach (var f in flights)
        {
            if (f.Lane < 0) continue;
            otherBusy |= !_lanes![f.Lane].IsDone;
            if (f.Lane == lane) lane = 1 - lane;
        }
        var output = _laneOutputs[lane] = OutputFor(batch, _laneOutputs[lane]);
        // A small batch stays on one thread, as on one lane (Models:SmallBatch).
        int threads = Math.Min(holder.LaneThreads, holder.ScoringThreads(batch.Count));
        _lanes![lane].Start(lane == 0 ? holder.Scorer! : holder.SideScorer!, batch, output, threads, EvidenceCut());
        if (otherBusy) metrics.SideBySide.Inc();
        return new Flight(batch, lane, null);
    }

    /// <summary>Judges a flight whose lane is done and hands it on, or back if its scoring failed.</summary>
    private void Land(Flight flight, ChannelWriter<JudgedBatch> sinks, CancellationToken hard)
    {
        if (flight.Lane < 0)
        {
            Hand(flight.Batch, flight.Error, holder.Scorer!, output: null, 0, sinks, hard);
            return;
        }
        var lane = _lanes![flight.Lane];
        var error = lane.Wait();
        Hand(flight.Batch, error, flight.Lane == 0 ? holder.Scorer! : holder.SideScorer!, _laneOutputs[flight.Lane]!, lane.Elapsed.TotalSeconds, sinks, hard);
    }

    /// <summary>
    /// Blocks until the lane is done or, with <paramref name="ready"/>, another batch is ready; false when the
    /// ready queue is closed and empty (the decoders are done), so that it is not waited on again.
    /// </summary>
    private static bool WaitForLaneOrBatch(ScoringLane lane, ChannelReader<Batch>? ready, CancellationToken hard)
    {
        hard.ThrowIfCancellationRequested();
        if (ready is null)
        {
            lane.Completion.GetAwaiter().GetResult(); // a forward pass is not interrupted: at most milliseconds
            return true;
        }
        using var either = CancellationTokenSource.CreateLinkedTokenSource(hard);
        var more = ready.WaitToReadAsync(either.Token).AsTask();
        Task.WaitAny(lane.Completion, more);
        either.Cancel();
        hard.ThrowIfCancellationRequested();
        return !more.IsCompletedSuccessfully || more.Result;
    }

    /// <summary>Judges a scored batch and hands it to the sinks, or, if its scoring failed, back to its sources.</summary>
    private void Hand(Batch batch, Exception? error, IBatchScorer scorer, ScoreOutput? output, double seconds, ChannelWriter<JudgedBatch> sinks, CancellationToken hard)
    {
        JudgedBatch? judged = null;
        if (error is null)
        {
            long started = Stopwatch.GetTimestamp();
            try
            {
                metrics.BatchDuration.Observe(seconds);
                metrics.BatchSize.Observe(batch.Count);
                judged = Judge(batch, output!, scorer);
            }
            catch (Exception e) when (e is not OperationCanceledException and not OutOfMemoryException)
            {
                error = e;
            }
            Interlocked.Add(ref _scoreTicks, Stopwatch.GetTimestamp() - started);
        }
        if (judged is null)
        {
            Log.BatchFailed(logger, error!, batch.Count);
            pool.HandBack(batch, error!.Message);
            return;
        }
        Write(sinks, judged, hard); // hands the batch back itself if the service stops while the sinks are full
    }

    /// <summary>The test hook's fault, or a batch decoded for another model's shape; null when the batch can be scored.</summary>
    private Exception? Check(Batch batch)
    {
        if (BeforeScoring?.Invoke(batch.Images.AsSpan(0, batch.Count).ToArray()) is { } fault) return fault;
        return batch.Shape != holder.Scorer!.Shape
            ? new InvalidOperationException($"the batch was decoded for {batch.Shape}, the model takes {holder.Scorer.Shape}")
            : null;
    }

    private ScoreOutput OutputFor(Batch batch, ScoreOutput? output) =>
        output is not null && output.Errors.Length >= batch.Capacity && Fits(output, batch.Shape) ? output
            : new ScoreOutput(Math.Max(batch.Capacity, _options.MaxBatchSize), batch.Shape, detailed: true);

    /// <summary>
    /// The score above which the scoring pass decodes an image for its evidence: the threshold as it stands when
    /// the batch starts. A latent score runs only the encoder; decoding its likely anomalies on the lane, from
    /// the codes it has, spares the judging thread a serial encoder and decoder pass per batch with anomalies.
    /// </summary>
    private float EvidenceCut() => holder.Judge is { } judge && judge.Threshold is var t && !double.IsNaN(t) ? (float)t : float.PositiveInfinity;

    /// <summary>Whether a buffer's reconstructions and error maps are laid out for <paramref name="shape"/> (a new model may take another).</summary>
    private static bool Fits(ScoreOutput output, ImageShape shape) =>
        output.Reconstructions!.Length == output.Errors.Length * shape.PixelCount
        && output.ErrorMaps!.Length == output.Errors.Length * shape.Height * shape.Width;

    /// <summary>Scores the batch, judges each image, and keeps the anomalies' reconstructions for their evidence.</summary>
    private JudgedBatch ScoreAndJudge(Batch batch)
    {
        long started = Stopwatch.GetTimestamp();
        var scorer = holder.Scorer!;
        if (batch.Shape != scorer.Shape)
            throw new InvalidOperationException($"the batch was decoded for {batch.Shape}, the model takes {scorer.Shape}");
        _output = OutputFor(batch, _output);
        holder.ApplyScoringThreads(batch.Count);
        scorer.Score(batch, _output, EvidenceCut());
        metrics.BatchDuration.Observe(Stopwatch.GetElapsedTime(started).TotalSeconds);
        metrics.BatchSize.Observe(batch.Count);
        var judged = Judge(batch, _output, scorer);
        Interlocked.Add(ref _scoreTicks, Stopwatch.GetTimestamp() - started);
        return judged;
    }

    /// <summary>Judges each image of a scored batch in order, and keeps the anomalies' reconstructions (from the scorer that scored it) for their evidence.</summary>
    private JudgedBatch Judge(Batch batch, ScoreOutput output, IBatchScorer scorer)
    {
        int n = batch.Count;
        var judge = holder.Judge!;
        var judged = new JudgedBatch(batch, batch.Images[..n], new Verdict[n], holder.Version, holder.SpaceName, time.GetUtcNow(), scorer.Kind);
        var anomalies = new List<int>();
        for (int i = 0; i < n; i++)
        {
            var verdict = judged.Verdicts[i] = judge.Judge(output.Errors[i], learn: !batch.Images[i].WasHeld);
            ObserveDrift(judged, i);
            if (verdict.IsAnomaly) anomalies.Add(i);
        }
        scorer.Reconstruct(batch, anomalies, output); // the anomalies the score pass did not decode, and none kept for the others
        output.ReconstructionErrors.AsSpan(0, n).CopyTo(judged.ReconstructionErrors);
        output.LatentScores.AsSpan(0, n).CopyTo(judged.LatentScores);
        int size = batch.Shape.PixelCount, plane = batch.Shape.Height * batch.Shape.Width;
        foreach (var i in anomalies)
        {
            var j = judged.Verdicts[i].Judgement;
            Log.Anomaly(logger, judged.Images[i].Id, judged.Images[i].Source, j.Score, j.Threshold, j.ZScore);
            // The output buffers are reused by the next batch: anomalies keep their own copies for evidence.
            judged.Reconstructions[i] = output.Reconstructions.AsSpan(i * size, size).ToArray();
            judged.ErrorMaps[i] = output.ErrorMaps.AsSpan(i * plane, plane).ToArray();
        }
        holder.PublishJudgeNumbers();
        return judged;
    }

    private void ObserveDrift(JudgedBatch batch, int index)
    {
        int change = _drift.Observe(batch.Verdicts[index].IsAnomaly);
        batch.DuringDrift[index] = _drift.Active;
        if (change == 0) return;
        metrics.DriftActive.Set(_drift.Active ? 1 : 0);
        var duration = judgeOptions.Value.Drift.Duration;
        batch.DriftAlerts.Add(new DriftAlert("drift", _drift.Active ? "started" : "ended", time.GetUtcNow(), _drift.Fraction, _drift.Count, duration, holder.Version,
            _drift.Active ? $"more than {judgeOptions.Value.Drift.Fraction:P0} of items anomalous for {duration}" : "the anomaly share fell back"));
        if (_drift.Active) Log.DriftStarted(logger, _drift.Fraction, _drift.Count, duration);
        else Log.DriftCleared(logger, "the anomaly share fell back");
    }

    /// <summary>A shift seen by the old model says nothing about the new one: it ends, with a drift alert saying so.</summary>
    private void EndDriftForNewModel(ChannelWriter<JudgedBatch> sinks, CancellationToken hard)
    {
        bool wasActive = _drift.Active;
        _drift.Clear();
        if (!wasActive) return;
        metrics.DriftActive.Set(0);
        var reason = $"model v{holder.Version} judges now";
        Log.DriftCleared(logger, reason);
        // Carried by an empty batch, so that the alert goes through the sink stage and the outbox like every other.
        var carrier = new JudgedBatch(null, [], [], holder.Version, holder.SpaceName, time.GetUtcNow());
        carrier.DriftAlerts.Add(new DriftAlert("drift", "ended", carrier.JudgedAt, 0, 0, judgeOptions.Value.Drift.Duration, holder.Version, reason));
        Write(sinks, carrier, hard);
    }

    /// <summary>
    /// Learning state: holds the batch's images durably until there are enough to train the first model, then
    /// trains it (the loop judges the held images next). Takes the batch: held images stay held whatever
    /// follows, the ones not reached are handed back.
    /// </summary>
    private void Learn(Batch batch, CancellationToken hard)
    {
        if (!bootstrapper.TrainsHere && _held.Count >= bootstrapper.SamplesNeeded)
        {
            // A fleet scorer waits for the trainer's model; beyond one bootstrap's worth, its sources keep the items,
            // however long the trainer takes: waiting is not a failed attempt, which would refuse them in minutes.
            pool.HandBack(batch, "this scorer has no model yet: it waits for the fleet's trainer to publish one", waiting: true);
            return;
        }
        var shape = batch.Shape;
        int i = 0;
        try
        {
            for (; i < batch.Count; i++)
            {
                var image = batch.Images[i];
                var pixels = batch.Slot(i).ToArray();
                durable.RunAsync("held", () => normals.Hold(image.Id, image.Source, image.Item.ReceivedAt, shape, pixels), hard).AsTask().GetAwaiter().GetResult();
                var held = image with { WasHeld = true };
                // A file offered again after a restart replaces its copy restored from the store (whose source waits for nothing).
                int existing = _held.FindIndex(h => h.Image.Item.Source is RestoredHeld && h.Image.Id == image.Id);
                if (existing >= 0)
                {
                    _held[existing].Image.Item.HandBack("superseded by a later copy", wasHeld: true);
                    _held[existing] = (held, pixels);
                }
                else
                {
                    _held.Add((held, pixels));
                }
                image.Item.Hold();
            }
        }
        catch (Exception e)
        {
            for (; i < batch.Count; i++) batch.Images[i].Item.HandBack(e is OperationCanceledException ? Stopped : e.Message, stopping: e is OperationCanceledException);
            throw;
        }
        finally
        {
            pool.Return(batch);
        }
        Log.LearningProgress(logger, _held.Count, bootstrapper.SamplesNeeded);
        if (_held.Count < bootstrapper.SamplesNeeded || !bootstrapper.TrainsHere) return;
        bootstrapper.TrainFromHeldAsync(_held.Select(h => h.Pixels).ToList(), hard).GetAwaiter().GetResult();
        SetState();
    }

    /// <summary>Once a model judges, the images held for it are judged, a batch at a time, and let go of in the store.</summary>
    private void JudgeHeld(ChannelWriter<JudgedBatch> sinks, CancellationToken hard)
    {
        while (_held.Count > 0)
        {
            var batch = pool.RentAsync(holder.InputShape, hard).AsTask().GetAwaiter().GetResult();
            int n = Math.Min(batch.Capacity, _held.Count);
            for (int i = 0; i < n; i++)
            {
                _held[i].Pixels.CopyTo(batch.Next());
                batch.Commit(_held[i].Image);
            }
            JudgedBatch judged;
            try
            {
                judged = ScoreAndJudge(batch);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // Their sources may have let go of them (an acknowledged message): they stay held and are tried again next turn.
                Log.BatchFailed(logger, e, n);
                pool.Return(batch);
                return;
            }
            var ids = _held.Take(n).Select(h => h.Image.Id).ToList();
            _held.RemoveRange(0, n);
            Write(sinks, judged, hard);
            // Through DurableWrite like every store write: a busy or full disk here must not end the scoring thread.
            durable.RunAsync("held", () => normals.ReleaseHeld(ids), hard).AsTask().GetAwaiter().GetResult();
        }
    }

    private void SetState()
    {
        metrics.State.WithLabels("learning").Set(holder.IsJudging ? 0 : 1);
        metrics.State.WithLabels("judging").Set(holder.IsJudging ? 1 : 0);
        Log.StateChanged(logger, holder.IsJudging ? "judging" : "learning");
    }

    private void RestoreWindow()
    {
        if (judgeState.Load() is { } state && holder.Judge!.Restore(state, holder.Fingerprint))
            Log.WindowRestored(logger, holder.Judge.WindowCount);
        holder.PublishJudgeNumbers();
    }

    /// <summary>Called by the scoring loop, which owns the judge, so the saved window is consistent.</summary>
    private void SaveWindowPeriodically()
    {
        if (Stopwatch.GetElapsedTime(_lastSave) < judgeOptions.Value.SaveInterval || !_saving.IsCompleted) return;
        _lastSave = Stopwatch.GetTimestamp();
        // The scoring thread only copies the window (microseconds); serialising it and the fsync (7-19 ms
        // measured here, more while the disk is busy) run beside it, so no batch waits for the disk.
        if (holder.Judge is { } judge)
        {
            var state = judge.Save(holder.Fingerprint);
            _saving = Task.Run(() =>
            {
                try { durable.TryOnce("judge_state", () => judgeState.Save(state)); }
                catch (Exception e) when (e is not OutOfMemoryException) { Log.SinkFailed(logger, "judge_state", "the judge window", e.Message); } // not a storage error: a bug, logged; the next save tries again
            });
        }
    }

    /// <summary>
    /// Saves now, after any periodic save still writing (so an older window never lands over a newer one); a
    /// failed save degrades the service until a later one succeeds, and the window itself stays in memory.
    /// </summary>
    private void SaveWindow()
    {
        _saving.GetAwaiter().GetResult();
        if (holder.Judge is { } judge) durable.TryOnce("judge_state", () => judgeState.Save(judge.Save(holder.Fingerprint)));
    }
}
