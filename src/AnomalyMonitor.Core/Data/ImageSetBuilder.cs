using AnomalyMonitor.Core.Imaging;

namespace AnomalyMonitor.Core.Data;

/// <summary>Accumulates converted images without re-copying the whole set on every append.</summary>
internal sealed class ImageSetBuilder(ImageShape shape, int capacity = 256)
{
    // The first allocation is for at most 1,024 images, so that a large folder read with a --limit allocates
    // for what is read, not for every file in it; beyond, the array doubles.
    private float[] _pixels = new float[(long)Math.Clamp(capacity, 1, Math.Max(1, Math.Min(1024, Array.MaxLength / shape.PixelCount))) * shape.PixelCount];
    private readonly List<int> _labels = new(capacity);
    private readonly List<string> _ids = new(capacity);

    public ImageShape Shape => shape;
    public int Count => _labels.Count;

    /// <summary>Space for the next image; call <see cref="Commit"/> once it is filled.</summary>
    public Span<float> Next()
    {
        long need = (long)(Count + 1) * shape.PixelCount;
        if (need > Array.MaxLength)
            throw new InputRejectedException("the data set", RejectReason.TooLarge, $"more than {Count} images of {shape} do not fit in one array; read fewer (--limit)");
        if (need > _pixels.Length)
            Array.Resize(ref _pixels, (int)Math.Min(Array.MaxLength, Math.Max(need, 2L * _pixels.Length)));
        return _pixels.AsSpan(Count * shape.PixelCount, shape.PixelCount);
    }

    public void Commit(int label, string id)
    {
        _labels.Add(label);
        _ids.Add(id);
    }

    public ImageSet Build(IReadOnlyList<string>? classNames = null)
    {
        Array.Resize(ref _pixels, Count * shape.PixelCount);
        return new ImageSet(shape, _pixels, [.. _labels], [.. _ids], classNames);
    }
}
