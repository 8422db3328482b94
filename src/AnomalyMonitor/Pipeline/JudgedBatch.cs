using AnomalyMonitor.Alerts;
using AnomalyMonitor.Core.Imaging;
using AnomalyMonitor.Core.Thresholds;
using AnomalyMonitor.Evidence;

namespace AnomalyMonitor.Pipeline;

/// <summary>
/// A scored and judged micro-batch on its way through the sinks. Anomalies carry their own copies of the
/// reconstruction and error map, because the scorer's buffers are reused by the next batch.
/// </summary>
public sealed class JudgedBatch(Decoded[] items, Verdict[] verdicts, ImageShape shape, int modelVersion, string space, DateTimeOffset judgedAt,
    string scoreKind = "reconstruction")
{
    public Decoded[] Items { get; } = items;
    public Verdict[] Verdicts { get; } = verdicts;
    public ImageShape Shape { get; } = shape;
    public int ModelVersion { get; } = modelVersion;
    /// <summary>The judge's statistics space, "log" or "linear", as alerts report it.</summary>
    public string Space { get; } = space;
    public DateTimeOffset JudgedAt { get; } = judgedAt;
    /// <summary>"reconstruction", "latent" or "combined": what the scores are.</summary>
    public string ScoreKind { get; } = scoreKind;
    /// <summary>Each item's reconstruction error, and latent score (0 for a reconstruction detector).</summary>
    public float[] ReconstructionErrors { get; } = new float[items.Length];
    public float[] LatentScores { get; } = new float[items.Length];
    public float[]?[] Reconstructions { get; } = new float[]?[items.Length];
    public float[]?[] ErrorMaps { get; } = new float[]?[items.Length];
    /// <summary>Whether a sustained shift was in progress when each item was judged (its alert is then suppressed).</summary>
    public bool[] DuringDrift { get; } = new bool[items.Length];
    /// <summary>Shifts that started or ended within this batch.</summary>
    public List<DriftAlert> DriftAlerts { get; } = [];
    /// <summary>Filled by the evidence sink for the anomalies whose evidence could be written; read by the alert sink.</summary>
    public EvidencePaths?[] Evidence { get; } = new EvidencePaths?[items.Length];

    public int Count => Items.Length;

    /// <summary>The alert record of an anomaly, as the evidence and the alert topic carry it.</summary>
    public AnomalyAlert Alert(int i)
    {
        var item = Items[i].Item;
        var j = Verdicts[i].Judgement;
        return new AnomalyAlert("anomaly", item.Id, item.Source, item.ReceivedAt, JudgedAt, j.Score, j.Threshold, j.ZScore, j.Mean, j.Std,
            Space, ModelVersion, Evidence[i], 0, item.Metadata, ScoreKind,
            float.IsFinite(ReconstructionErrors[i]) ? ReconstructionErrors[i] : null, ScoreKind == "reconstruction" ? null : LatentScores[i]);
    }
}
