using AnomalyMonitor.Pipeline;
using AnomalyMonitor.Sinks;
using AnomalyMonitor.State;

namespace AnomalyMonitor.Samples;

/// <summary>
/// Stores a batch's accepted normals (below mean + Accept·σ) with their provenance, in one transaction.
/// Durable: an accepted item is acknowledged only once the next model's training sample is on disk.
/// </summary>
internal sealed class NormalStoreSink(NormalSampleStore store, DurableWrite durable) : IVerdictSink
{
    public bool Durable => true;

    public async ValueTask WriteAsync(JudgedBatch batch, CancellationToken cancellationToken)
    {
        var samples = new List<NewSample>();
        for (int i = 0; i < batch.Count; i++)
        {
            var v = batch.Verdicts[i];
            if (v.IsAnomaly || !v.Accepted) continue;
            var image = batch.Images[i];
            samples.Add(new NewSample(image.Id, image.Source, image.Item.ReceivedAt, v.Judgement.Score, batch.ModelVersion, batch.Pixels(i).ToArray()));
        }
        if (samples.Count > 0) await durable.RunAsync("normal_store", () => store.AddRange(samples, batch.Shape), cancellationToken).ConfigureAwait(false);
    }
}
