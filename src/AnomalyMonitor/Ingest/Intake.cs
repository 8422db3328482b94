using AnomalyMonitor.Core.Imaging;
using AnomalyMonitor.Telemetry;
using Microsoft.Extensions.Logging;

namespace AnomalyMonitor.Ingest;

/// <summary>
/// Where sources hand items in, and the one place a refusal is recorded: counted in
/// anomaly_monitor_rejected_total, logged with the image's id and reason (20 lines each 10 s, then one line
/// with the count: <see cref="RejectionLog"/>), and kept with its item, so
/// that the source can keep the input (rejected/ beside a .reason.txt, or state/quarantine).
/// </summary>
public sealed class Intake(ItemQueue queue, MonitorMetrics metrics, ILogger<Intake> logger, TimeProvider time)
{
    private readonly RejectionLog _log = new(logger, time);

    /// <summary>Waits for room (back-pressure); false once the pipeline has shut down, and the source keeps the item.</summary>
    public ValueTask<bool> SubmitAsync(IngestItem item, CancellationToken cancellationToken) => queue.WriteAsync(item, cancellationToken);

    /// <summary>One image of an item refused.</summary>
    public void Reject(IngestItem item, string imageId, string source, RejectReason reason, string detail, ReadOnlyMemory<byte> bytes, bool wasHeld = false)
    {
        metrics.CountRejected(source, reason);
        _log.Rejected(imageId, source, reason, detail);
        item.Reject(new ImageRejection(imageId, source, reason, detail, bytes), wasHeld);
    }

    /// <summary>A whole item refused before any image was found in it (too large, not an image, malformed JSON, unreadable).</summary>
    public void RejectWhole(IngestItem item, RejectReason reason, string detail)
    {
        item.AddImages(1);
        Reject(item, item.Id, item.Label, reason, detail, item.Payload);
        item.Decoded();
    }
}
