using AnomalyMonitor.Pipeline;
using AnomalyMonitor.Sinks;
using AnomalyMonitor.State;
using AnomalyMonitor.Alerts;
using AnomalyMonitor.Fleet;
using Microsoft.Extensions.Options;

namespace AnomalyMonitor.Samples;

/// <summary>
/// Stores a batch's accepted normals (below mean + Accept·σ) with their provenance, in one transaction,
/// at most NormalStore:MaxPerSecond of them (a token bucket). Durable: an accepted item is acknowledged
/// only once the next model's training sample is on disk.
/// On a fleet scorer, the same samples go to the trainer instead, as one message per batch through the
/// outbox (durable there, and sent when the broker is reachable).
/// </summary>
internal sealed class NormalStoreSink(
    NormalSampleStore store, AlertOutbox outbox, DurableWrite durable, IOptions<NormalStoreOptions> options, IOptions<FleetOptions> fleet, TimeProvider time) : IVerdictSink
{
    private readonly double _rate = options.Value.MaxPerSecond;
    private readonly double _burst = options.Value.MaxPerSecond * options.Value.BurstSeconds;
    private double _tokens = options.Value.MaxPerSecond * options.Value.BurstSeconds;
    private long _last = time.GetTimestamp();

    public bool Durable => true;

    // Under a flood the bucket refills by one or two samples between batches, and each of those samples cost a
    // transaction of its own: the store's cost went with the number of batches, not of samples (small batches,
    // when the scorer keeps up, made it twice as dear per item). Once the rate binds, a batch stores samples
    // only when tokens for all its accepted normals (16 at most) have built up, so one transaction carries them
    // all; the rate is the same, and a stream slower than the rate keeps its bucket full and stores every one.
    private const int Chunk = 16;
    private readonly double _chunk = Math.Min(Chunk, options.Value.MaxPerSecond * options.Value.BurstSeconds);

    private void Refill()
    {
        long now = time.GetTimestamp();
        _tokens = Math.Min(_burst, _tokens + time.GetElapsedTime(_last, now).TotalSeconds * _rate);
        _last = now;
    }

    /// <summary>Whether one more sample fits the rate; called once per accepted normal, from the sink stage only.</summary>
    private bool Take()
    {
        if (_rate <= 0) return true;
        if (_tokens < 1) return false;
        _tokens--;
        return true;
    }

    public async ValueTask WriteAsync(JudgedBatch batch, CancellationToken cancellationToken)
    {
        if (_rate > 0)
        {
            int accepted = 0;
            for (int i = 0; i < batch.Count; i++)
                if (batch.Verdicts[i] is { IsAnomaly: false, Accepted: true }) accepted++;
            Refill();
            // The rate binds: wait until the batch's accepted normals (a chunk at most) fit at once, rather than write one or two.
            if (accepted == 0 || _tokens < Math.Min(accepted, _chunk)) return;
        }
        var samples = new List<NewSample>();
        for (int i = 0; i < batch.Count; i++)
        {
            var v = batch.Verdicts[i];
            if (v.IsAnomaly || !v.Accepted || !Take()) continue;
            var image = batch.Images[i];
            samples.Add(new NewSample(image.Id, image.Source, image.Item.ReceivedAt, v.Judgement.Score, batch.ModelVersion, batch.Pixels(i).ToArray()));
        }
        if (samples.Count == 0) return;
        var f = fleet.Value;
        if (f.IsScorer)
        {
            var message = new OutboxEntry(f.SamplesTopic, SampleMessage.Encode(f.EffectiveInstance, batch.Shape, samples), AlertOutbox.SamplesKind);
            await durable.RunAsync("outbox", () => outbox.AddRange([message]), cancellationToken).ConfigureAwait(false);
        }
        else await durable.RunAsync("normal_store", () => store.AddRange(samples, batch.Shape), cancellationToken).ConfigureAwait(false);
    }
}
