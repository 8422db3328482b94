using AnomalyMonitor.Core.Data;
using AnomalyMonitor.Core.Models;
using AnomalyMonitor.Core.Scoring;
using AnomalyMonitor.Core.Storage;
using AnomalyMonitor.Core.Training;
using AnomalyMonitor.Pipeline;
using AnomalyMonitor.Pipeline.Scoring;
using AnomalyMonitor.Tests.Support;
using static TorchSharp.torch;

namespace AnomalyMonitor.Tests.Pipeline;

/// <summary>
/// A latent score runs only the encoder. The images scoring above the threshold are decoded in the scoring pass,
/// from the codes it has, and the evidence pass after judging fills only the anomalies still missing: the
/// evidence is the same either way, and a normal keeps no reconstruction.
/// </summary>
public sealed class EvidenceDecodeTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly ImageSet _data = Synthetic.Set(blobs: 24, stripes: 4, noise: 4, seed: 31);

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void The_scoring_pass_decodes_what_scores_above_the_cut_and_the_evidence_pass_fills_only_what_is_missing()
    {
        using var loaded = ModelFiles.Load(TrainLatent(), CPU);
        int n = _data.Count;
        var shape = _data.Shape;
        var reference = new ScoreOutput(n, shape, detailed: true);
        using (NewDisposeScope())
        using (no_grad())
            loaded.CreateScorer().Reconstruct(tensor(_data.Pixels, [n, shape.Channels, shape.Height, shape.Width]), n, reference, 0);

        using var batch = new Batch(shape, n);
        var source = new RecordingSource();
        for (int i = 0; i < n; i++)
        {
            _data.Pixels.AsSpan(i * shape.PixelCount, shape.PixelCount).CopyTo(batch.Next());
            batch.Commit(new ImageRef(source.Item($"i{i}"), $"i{i}", "t", null));
        }
        using var scorer = new TorchBatchScorer(loaded);
        var plain = new ScoreOutput(n, shape, detailed: true);
        scorer.Score(batch, plain, float.PositiveInfinity);
        Assert.All(plain.Reconstructed, r => Assert.False(r));

        float cut = plain.Errors.Order().ElementAt(n / 2);
        var output = new ScoreOutput(n, shape, detailed: true);
        scorer.Score(batch, output, cut);
        var above = Enumerable.Range(0, n).Where(i => output.Errors[i] > cut).ToList();
        Assert.InRange(above.Count, 1, n - 1);
        for (int i = 0; i < n; i++)
        {
            Assert.Equal(plain.Errors[i], output.Errors[i], 1e-5f); // decoding some images leaves every score as it was
            Assert.Equal(above.Contains(i), output.Reconstructed[i]);
            if (above.Contains(i)) Matches(reference, output, i, "decoded while scoring");
            else Assert.True(float.IsNaN(output.ReconstructionErrors[i]), $"image {i} below the cut has a reconstruction error");
        }

        // The judge calls the highest and the lowest score anomalies (a two-sided rule, or a threshold that moved):
        // one was decoded already, the other was not; every other decoded image turned out normal.
        int highest = above.MaxBy(i => output.Errors[i]), lowest = Enumerable.Range(0, n).MinBy(i => output.Errors[i]);
        scorer.Reconstruct(batch, [highest, lowest], output);
        for (int i = 0; i < n; i++)
        {
            bool anomaly = i == highest || i == lowest;
            Assert.Equal(anomaly, output.Reconstructed[i]);
            if (anomaly) Matches(reference, output, i, i == highest ? "decoded while scoring" : "decoded after judging");
            else Assert.True(float.IsNaN(output.ReconstructionErrors[i]), $"normal image {i} kept a reconstruction error");
        }
    }

    private static void Matches(ScoreOutput reference, ScoreOutput output, int i, string how)
    {
        Assert.True(Math.Abs(reference.ReconstructionErrors[i] - output.ReconstructionErrors[i]) <= 1e-5 + (1e-4 * reference.ReconstructionErrors[i]),
            $"image {i} ({how}): reconstruction error {output.ReconstructionErrors[i]}, the evidence pass's {reference.ReconstructionErrors[i]}");
        int size = reference.Reconstructions!.Length / reference.Errors.Length, plane = reference.ErrorMaps!.Length / reference.Errors.Length;
        for (int p = 0; p < size; p++)
            Assert.True(Math.Abs(reference.Reconstructions[(i * size) + p] - output.Reconstructions![(i * size) + p]) <= 1e-4, $"image {i} ({how}): pixel {p} of its reconstruction differs");
        for (int p = 0; p < plane; p++)
            Assert.True(Math.Abs(reference.ErrorMaps[(i * plane) + p] - output.ErrorMaps![(i * plane) + p]) <= 1e-4, $"image {i} ({how}): pixel {p} of its error map differs");
    }

    private string TrainLatent()
    {
        var model = _dir.File("model");
        ModelBuilder.TrainAndSave(_data, new BuildRequest
        {
            Spec = ModelSpec.Create(ModelSpec.Conv, _data.Shape, 8),
            Training = new TrainingOptions { Epochs = 1, BatchSize = 16, Seed = 1, Score = ScoreKind.Latent, LatentComponents = 1 },
            DataDescription = "synthetic",
            NormalClass = "0",
        }, model, CPU, TimeProvider.System);
        return model;
    }
}
