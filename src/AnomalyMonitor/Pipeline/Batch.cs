using AnomalyMonitor.Core.Imaging;
using static TorchSharp.torch;

namespace AnomalyMonitor.Pipeline;

/// <summary>
/// A micro-batch: up to Capacity images decoded straight into one pinned buffer in the model layout
/// (N x C x H x W floats), which torch reads in place (torch.from_array shares the memory): from payload
/// to tensor the pixels are copied once, by the decoder. Filled by one decode worker, scored by the
/// scoring thread, read by the sinks, then returned to its pool.
/// </summary>
public sealed class Batch : IDisposable
{
    private readonly float[] _pixels;
    private Tensor? _all;

    public Batch(ImageShape shape, int capacity)
    {
        Shape = shape;
        Capacity = capacity;
        // On the pinned object heap: the GC never moves it while torch reads it.
        _pixels = GC.AllocateUninitializedArray<float>(capacity * shape.PixelCount, pinned: true);
        Images = new ImageRef[capacity];
    }

    public ImageShape Shape { get; }
    public int Capacity { get; }
    public int Count { get; private set; }
    public ImageRef[] Images { get; }
    public bool IsFull => Count == Capacity;
    /// <summary>Stopwatch timestamp of the first image, for the batch's time limit.</summary>
    public long Started { get; private set; }

    /// <summary>The pixels of slot <paramref name="index"/>.</summary>
    public Span<float> Slot(int index) => _pixels.AsSpan(index * Shape.PixelCount, Shape.PixelCount);

    /// <summary>The next free slot, for a decoder to write into; it belongs to the batch only once committed.</summary>
    public Span<float> Next() => Slot(Count);

    public void Commit(ImageRef image)
    {
        if (Count == 0) Started = System.Diagnostics.Stopwatch.GetTimestamp();
        Images[Count++] = image;
    }

    /// <summary>Count x C x H x W over the buffer itself, no copy. Valid until the batch is reset.</summary>
    public Tensor View()
    {
        // The batch owns this one (it lives as long as the buffer), not the dispose scope it is first asked for in.
        _all ??= from_array(_pixels).DetachFromDisposeScope();
        return _all.narrow(0, 0, (long)Count * Shape.PixelCount).view(Count, Shape.Channels, Shape.Height, Shape.Width);
    }

    /// <summary>The first <paramref name="count"/> slots as one span (the scorer's input when it cannot take a tensor).</summary>
    public ReadOnlySpan<float> Pixels => _pixels.AsSpan(0, Count * Shape.PixelCount);

    public void Reset()
    {
        Array.Clear(Images, 0, Count);
        Count = 0;
    }

    public void Dispose() => _all?.Dispose();
}

/// <summary>
/// A fixed number of batches for the current input shape: a decode worker waits for one when all are in
/// use (filling, scoring or in the sinks), so memory stays bounded and back-pressure reaches the queue.
/// </summary>
public sealed class BatchPool(int count, int capacity) : IDisposable
{
    private readonly System.Threading.Channels.Channel<Batch> _free = System.Threading.Channels.Channel.CreateUnbounded<Batch>();
    private readonly Lock _lock = new();
    private ImageShape _shape;
    private int _created;

    public int Capacity => capacity;

    public async ValueTask<Batch> RentAsync(ImageShape shape, CancellationToken cancellationToken)
    {
        while (true)
        {
            lock (_lock)
            {
                if (_shape != shape)
                {
                    // A model of another input size: old batches are dropped as they come back.
                    _shape = shape;
                    while (_free.Reader.TryRead(out var old)) { old.Dispose(); _created--; }
                }
                // Batches of the old shape still in flight when the shape changed come back later: dropped here too.
                while (_free.Reader.TryRead(out var free))
                {
                    if (free.Shape == shape) return free;
                    free.Dispose();
                    _created--;
                }
                if (_created < count)
                {
                    _created++;
                    return new Batch(shape, capacity);
                }
            }
            var next = await _free.Reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            lock (_lock)
            {
                if (next.Shape == _shape) return next;
                next.Dispose();
                _created--;
            }
        }
    }

    /// <summary>Hands every image of the batch back to its item (and so its source) to be offered again, and takes the batch back.</summary>
    public void HandBack(Batch batch, string reason, bool stopping = false, bool waiting = false)
    {
        for (int i = 0; i < batch.Count; i++) batch.Images[i].Item.HandBack(reason, batch.Images[i].WasHeld, stopping, waiting);
        Return(batch);
    }

    public void Return(Batch batch)
    {
        batch.Reset();
        _free.Writer.TryWrite(batch);
    }

    public void Dispose()
    {
        while (_free.Reader.TryRead(out var b)) b.Dispose();
    }
}
