using System.Collections.Concurrent;
using System.Diagnostics;
using AnomalyMonitor.Core.Imaging;

namespace AnomalyMonitor.Ingest;

/// <summary>One image of an item refused, with why.</summary>
public sealed record ImageRejection(string Id, string Source, RejectReason Reason, string Detail, ReadOnlyMemory<byte> Bytes);

/// <summary>One image's verdict, for sources that answer with them (the HTTP scoring endpoint).</summary>
public sealed record ImageVerdict(string Id, double Score, double Threshold, double ZScore, bool IsAnomaly, int ModelVersion, string ScoreKind);

/// <summary>
/// One input a source took in (a file, a message, a request body) on its way through the pipeline, and
/// what became of each image in it. The decoder finds the images (one for an image, several for a JSON
/// batch or an IDX file); each ends judged, rejected or handed back, and when the last one has, the item
/// is settled with its source, exactly once.
/// </summary>
public sealed class IngestItem
{
    // One open "image" for the decoding itself, so that the item cannot settle before the decoder has counted its images.
    private int _open = 1;
    private int _undurable = 1;
    private int _settled;
    private int _heldReported;
    private int _images, _judged, _anomalies, _held, _handedBack, _stopping, _waiting;
    private string? _handBackReason;

    public required IIngestSource Source { get; init; }
    private string? _id;

    /// <summary>The item's id: the file name, the request's, or for a message its content hash (see <see cref="IdFactory"/>).</summary>
    public string Id
    {
        get => _id ??= IdFactory?.Invoke(this) ?? "";
        init => _id = value;
    }

    /// <summary>Computes the id when it is first asked for: an envelope that names its image never pays for hashing the payload.</summary>
    public Func<IngestItem, string>? IdFactory { get; init; }
    /// <summary>The "source" label of its images unless an envelope names its own: "folder", the MQTT topic, "http".</summary>
    public required string Label { get; init; }
    public DateTimeOffset ReceivedAt { get; init; }
    /// <summary>Stopwatch timestamp at arrival, for the end-to-end latency histogram.</summary>
    public long ArrivalTimestamp { get; init; } = Stopwatch.GetTimestamp();
    /// <summary>The bytes as received: an image, a JSON envelope or batch, or (with <see cref="BatchFile"/>) nothing.</summary>
    public ReadOnlyMemory<byte> Payload { get; init; }
    /// <summary>A file of many images (IDX, .npy, .npz) for the decoder to read, instead of a payload.</summary>
    public string? BatchFile { get; init; }
    /// <summary>The source's size limit for a batch file, which also caps what it may decompress to; 0 for the decoder's default.</summary>
    public long MaxBytes { get; init; }
    public IReadOnlyDictionary<string, string>? Metadata { get; init; }
    /// <summary>The source's own handle on the item: a claimed path, an MQTT delivery, a pending response.</summary>
    public object? State { get; set; }
    /// <summary>Keep each image's verdict (for sources that answer with them).</summary>
    public bool KeepVerdicts { get; init; }

    public int Images => Volatile.Read(ref _images);
    public int Judged => Volatile.Read(ref _judged);
    public int Anomalies => Volatile.Read(ref _anomalies);
    public int HeldImages => Volatile.Read(ref _held);
    public bool HandedBack => Volatile.Read(ref _handedBack) == 1;
    public string? HandBackReason => _handBackReason;
    /// <summary>Handed back because the service is stopping: the source keeps it for the next start (processing/, unacknowledged) and counts no attempt.</summary>
    public bool HandedBackAtShutdown => Volatile.Read(ref _stopping) == 1;
    /// <summary>Handed back until the service can take it (see HandBack's waiting): the source offers it again later and counts no attempt.</summary>
    public bool HandedBackWaiting => Volatile.Read(ref _waiting) == 1;
    public ConcurrentQueue<ImageRejection> Rejections { get; } = new();
    public ConcurrentQueue<ImageVerdict> Verdicts { get; } = new();
    public bool Settled => Volatile.Read(ref _settled) == 1;

    /// <summary>The decoder found <paramref name="count"/> more images in the item.</summary>
    internal void AddImages(int count)
    {
        Interlocked.Add(ref _images, count);
        Interlocked.Add(ref _open, count);
        Interlocked.Add(ref _undurable, count);
    }

    /// <summary>The decoder is done with the item: every image it holds is counted.</summary>
    internal void Decoded() => Close(durable: true);

    // An image that was held already counted as durable when it was held: its final word must not count it again.

    internal void Judge(bool anomaly, ImageVerdict? verdict, bool wasHeld = false)
    {
        Interlocked.Increment(ref _judged);
        if (anomaly) Interlocked.Increment(ref _anomalies);
        if (KeepVerdicts && verdict is not null) Verdicts.Enqueue(verdict);
        Close(durable: !wasHeld);
    }

    internal void Reject(ImageRejection rejection, bool wasHeld = false)
    {
        Rejections.Enqueue(rejection);
        Close(durable: !wasHeld);
    }

    /// <summary>An image, or (for one never decoded) the whole item, goes back to the source to be offered again.</summary>
    /// <param name="stopping">Because the service is stopping, not because something failed: no attempt is counted.</param>
    /// <param name="waiting">Because the service cannot take it yet (a fleet scorer before its first model), not because
    /// something failed: no attempt is counted, and it is offered again after the longest retry delay.</param>
    internal void HandBack(string reason, bool wasHeld = false, bool stopping = false, bool waiting = false)
    {
        Interlocked.CompareExchange(ref _handBackReason, reason, null);
        if (stopping) Volatile.Write(ref _stopping, 1);
        if (waiting) Volatile.Write(ref _waiting, 1);
        Volatile.Write(ref _handedBack, 1);
        Close(durable: !wasHeld);
    }

    /// <summary>An image is durably held for the first model: it will be judged later, from the store.</summary>
    internal void Hold()
    {
        Interlocked.Increment(ref _held);
        if (Interlocked.Decrement(ref _undurable) == 0) ReportHeld();
    }

    private void Close(bool durable)
    {
        if (durable && Interlocked.Decrement(ref _undurable) == 0 && HeldImages > 0) ReportHeld();
        if (Interlocked.Decrement(ref _open) == 0 && Interlocked.Exchange(ref _settled, 1) == 0) Source.Settle(this);
    }

    private void ReportHeld()
    {
        if (Interlocked.Exchange(ref _heldReported, 1) == 0) Source.Held(this);
    }
}
