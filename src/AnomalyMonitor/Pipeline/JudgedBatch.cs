using AnomalyMonitor.Alerts;
using AnomalyMonitor.Core.Imaging;
using AnomalyMonitor.Core.Thresholds;
using AnomalyMonitor.Evidence;

namespace AnomalyMonitor.Pipeline;

/// <summary>
/// A scored and judged batch on its way through the sinks: the batch itself (its images and pixels, until
/// the sinks are done with it), each image's verdict and scores, and the reconstructions and error maps of
/// its anomalies.
/// </summary>
public sealed class JudgedBatch(Batch? batch, ImageRef[] images, Verdict[] verdicts, int modelVersion, string space, DateTimeOffset judgedAt,
    string scoreKind = "reconstruction")
{
    /// <summary>The pixels' owner; null for a batch that carries no images (a drift alert alone).</summary>
    public Batch? Batch { get; } = batch;
    public ImageRef[] Images { get; } = images;
    public Verdict[] Verdicts { get; } = verdicts;
    public ImageShape Shape => Batch?.Shape ?? default;
    public int ModelVersion { get; } = modelVersion;
    /// <summary>The judge's statistics space, "log" or "linear", as alerts report it.</summary>
    public string Space { get; } = space;
    public DateTimeOffset JudgedAt { get; } = judgedAt;
    /// <summary>"reconstruction", "latent" or "combined": what the scores are.</summary>
    public string ScoreKind { get; } = scoreKind;
    /// <summary>Each image's reconstruction error (NaN when its decoder did not run), and latent score (0 for a reconstruction detector).</summary>
    public float[] ReconstructionErrors { get; } = new float[images.Length];
    public float[] LatentScores { get; } = new float[images.Length];
    public float[]?[] Reconstructions { get; } = new float[]?[images.Length];
    public float[]?[] ErrorMaps { get; } = new float[]?[images.Length];
    /// <summary>Whether a sustained shift was in progress when each image was judged (its alert is then suppressed).</summary>
    public bool[] DuringDrift { get; } = new bool[images.Length];
    /// <summary>Shifts that started or ended within this batch.</summary>
    public List<DriftAlert> DriftAlerts { get; } = [];
    /// <summary>Filled by the evidence sink for the anomalies whose evidence could be written; read by the alert sink.</summary>
    public EvidencePaths?[] Evidence { get; } = new EvidencePaths?[images.Length];

    public int Count => Images.Length;

    /// <summary>The pixels of image <paramref name="i"/> in the model layout.</summary>
    public ReadOnlySpan<float> Pixels(int i) => Batch!.Slot(i);

    /// <summary>The alert record of an anomaly, as the evidence and the alert topic carry it.</summary>
    public AnomalyAlert Alert(int i)
    {
        var image = Images[i];
        var j = Verdicts[i].Judgement;
        return new AnomalyAlert("anomaly", image.Id, image.Source, image.Item.ReceivedAt, JudgedAt, j.Score, j.Threshold, j.ZScore, j.Mean, j.Std,
            Space, ModelVersion, Evidence[i], 0, image.Metadata, ScoreKind,
            float.IsFinite(ReconstructionErrors[i]) ? ReconstructionErrors[i] : null, ScoreKind == "reconstruction" ? null : LatentScores[i]);
    }
}
