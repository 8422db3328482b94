using System.Buffers;
using System.Diagnostics;
using AnomalyMonitor.Alerts;
using AnomalyMonitor.Core.Scoring;
using AnomalyMonitor.Core.Thresholds;
using AnomalyMonitor.Ingest;
using AnomalyMonitor.Telemetry;

namespace AnomalyMonitor.Pipeline;

public sealed partial class PipelineService
{
    private float[] _batchPixels = [];
    private ScoreOutput? _output;

    /// <summary>
    /// Scores and judges on the scoring loop, then hands the batch to the sink stage, so that writing
    /// evidence and records overlaps the next batch's forward pass instead of delaying it.
    /// </summary>
    private ValueTask ScoreAndJudgeAsync(List<Decoded> batch, CancellationToken cancellationToken)
    {
        var shape = holder.InputShape;
        int n = batch.Count, size = shape.PixelCount;
        if (_batchPixels.Length < _options.MaxBatchSize * size || _output is null || _output.Errors.Length < _options.MaxBatchSize)
        {
            _batchPixels = new float[_options.MaxBatchSize * size];
            _output = new ScoreOutput(_options.MaxBatchSize, shape, detailed: true);
        }
        for (int i = 0; i < n; i++) batch[i].Pixels.AsSpan(0, size).CopyTo(_batchPixels.AsSpan(i * size, size));

        holder.ApplyScoringThreads();
        long start = Stopwatch.GetTimestamp();
        holder.Scorer!.ScoreBatch(_batchPixels.AsSpan(0, n * size), n, _output);
        metrics.BatchDuration.Observe(Stopwatch.GetElapsedTime(start).TotalSeconds);
        metrics.BatchSize.Observe(n);

        var judge = holder.Judge!;
        var judged = new JudgedBatch([.. batch], new Verdict[n], shape, holder.Version, holder.SpaceName, time.GetUtcNow(),
            Detector.Name(holder.Scorer.Detector.Score));
        _output.ReconstructionErrors.AsSpan(0, n).CopyTo(judged.ReconstructionErrors);
        _output.LatentScores.AsSpan(0, n).CopyTo(judged.LatentScores);
        int plane = shape.Height * shape.Width;
        for (int i = 0; i < n; i++)
        {
            var verdict = judged.Verdicts[i] = judge.Judge(_output.Errors[i]);
            ObserveDrift(judged, i);
            if (!verdict.IsAnomaly) continue;
            Log.Anomaly(logger, batch[i].Item.Id, batch[i].Item.Source, verdict.Judgement.Score, verdict.Judgement.Threshold, verdict.Judgement.ZScore);
            // The scorer's buffers are reused by the next batch: anomalies keep their own copies for evidence.
            judged.Reconstructions[i] = _output.Reconstructions.AsSpan(i * size, size).ToArray();
            judged.ErrorMaps[i] = _output.ErrorMaps.AsSpan(i * plane, plane).ToArray();
        }
        holder.PublishJudgeNumbers();
        return _sinks.Writer.WriteAsync(judged, cancellationToken);
    }

    /// <summary>
    /// The sink stage's loop: records each batch (metrics, history, evidence, alert outbox, sample store) and
    /// only then tells the sources: an acknowledgement always follows a durable record.
    /// </summary>
    private async Task SinkLoopAsync(CancellationToken cancellationToken)
    {
        await foreach (var judged in _sinks.Reader.ReadAllAsync(CancellationToken.None).ConfigureAwait(false))
            await sinkStage.WriteAsync(judged, cancellationToken).ConfigureAwait(false);
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
    private ValueTask EndDriftForNewModelAsync(CancellationToken cancellationToken)
    {
        bool wasActive = _drift.Active;
        _drift.Clear();
        if (!wasActive) return ValueTask.CompletedTask;
        metrics.DriftActive.Set(0);
        var reason = $"model v{holder.Version} judges now";
        Log.DriftCleared(logger, reason);
        // Carried by an empty batch, so that the alert goes through the sink stage and the outbox like every other.
        var carrier = new JudgedBatch([], [], holder.InputShape, holder.Version, holder.SpaceName, time.GetUtcNow());
        carrier.DriftAlerts.Add(new DriftAlert("drift", "ended", carrier.JudgedAt, 0, 0, judgeOptions.Value.Drift.Duration, holder.Version, reason));
        return _sinks.Writer.WriteAsync(carrier, cancellationToken);
    }

    /// <summary>Learning state: hold items durably until there are enough to train the first model, then judge them all.</summary>
    private async Task LearnAsync(List<Decoded> batch, CancellationToken cancellationToken)
    {
        var shape = holder.InputShape;
        foreach (var d in batch)
        {
            var pixels = d.Rented ? d.Pixels.AsSpan(0, shape.PixelCount).ToArray() : d.Pixels;
            if (d.Rented) ArrayPool<float>.Shared.Return(d.Pixels);
            await durable.RunAsync("held", () => normals.Hold(d.Item.Id, d.Item.Source, d.Item.ReceivedAt, shape, pixels), cancellationToken).ConfigureAwait(false);
            var existing = _held.FindIndex(h => h.Item.Id == d.Item.Id);
            if (existing >= 0) _held[existing] = new Decoded(d.Item, pixels, false); // re-fed after a restart: keep one
            else _held.Add(new Decoded(d.Item, pixels, false));
            d.Item.WasHeld = true;
            d.Item.Completion?.Held(d.Item);
        }
        Log.LearningProgress(logger, _held.Count, bootstrapper.SamplesNeeded);
        if (_held.Count < bootstrapper.SamplesNeeded) return;

        await bootstrapper.TrainFromHeldAsync(_held.Select(h => h.Pixels).ToList(), cancellationToken).ConfigureAwait(false);
        SetState();
        var held = _held.ToList();
        _held.Clear();
        for (int i = 0; i < held.Count; i += _options.MaxBatchSize)
            await ScoreAndJudgeAsync(held.GetRange(i, Math.Min(_options.MaxBatchSize, held.Count - i)), cancellationToken).ConfigureAwait(false);
        normals.ReleaseHeld(held.Select(h => h.Item.Id));
    }

    private void HandBackRemaining()
    {
        while (_decoded.Reader.TryRead(out var d)) d.Release(ItemResult.HandedBack);
        while (queue.Reader.TryRead(out var item)) item.Complete(ItemResult.HandedBack);
        foreach (var d in _held) d.Item.Complete(ItemResult.HandedBack);
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

    private long _lastSave = Stopwatch.GetTimestamp();

    /// <summary>Called by the scoring loop, which owns the judge, so the saved window is consistent.</summary>
    private void SaveWindowPeriodically()
    {
        if (Stopwatch.GetElapsedTime(_lastSave) < judgeOptions.Value.SaveInterval) return;
        _lastSave = Stopwatch.GetTimestamp();
        SaveWindow();
    }

    /// <summary>A failed save degrades the service until a later one succeeds; the window itself stays in memory.</summary>
    private void SaveWindow()
    {
        if (holder.Judge is { } judge) durable.TryOnce("judge_state", () => judgeState.Save(judge.Save(holder.Fingerprint)));
    }

    private async Task HousekeepingAsync(PeriodicTimer timer, CancellationToken cancellationToken)
    {
        while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
        {
            try
            {
                evidence.Prune();
            }
            catch (IOException e)
            {
                Log.SinkFailed(logger, "housekeeping", "-", e.Message);
            }
        }
    }
}
