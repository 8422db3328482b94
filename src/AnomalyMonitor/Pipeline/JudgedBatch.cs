using AnomalyMonitor.Core.Imaging;
using AnomalyMonitor.Core.Thresholds;

namespace AnomalyMonitor.Pipeline;

/// <summary>
/// A scored and judged micro-batch on its way to the sinks. Anomalies carry their own copies of the
/// reconstruction and error map, because the scorer's buffers are reused by the next batch.
/// </summary>
internal sealed record JudgedBatch(Decoded[] Items, Verdict[] Verdicts, float[]?[] Reconstructions, float[]?[] ErrorMaps, ImageShape Shape, int ModelVersion);
