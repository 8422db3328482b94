using AnomalyMonitor.Core.Imaging;

namespace AnomalyMonitor.Core.Data;

/// <summary>Accumulates converted images without re-copying the whole set on every append.</summary>
internal sealed class ImageSetBuilder(ImageShape shape, int capacity = 256)
{
    private float[] _pixels = new float[Math.Max(1, capacity) * shape.PixelCount];
    private readonly List<int> _labels = new(capacity);
    private readonly List<string> _ids = new(capacity);

    public ImageShape Shape => shape;
    public int Count => _labels.Count;

    /// <summary>Space for the next image; call <see cref="Commit"/> once it is filled.</summary>
    public Span<float> Next()
    {
        int need = (Count + 1) * shape.PixelCount;
        if (need > _pixels.Length)
            Array.Resize(ref _pixels, Math.Max(need, _pixels.Length * 2));
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
