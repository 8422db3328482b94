using System.Security.Cryptography;
using System.Runtime.InteropServices;
using AnomalyMonitor.Core.Imaging;

namespace AnomalyMonitor.Core.Data;

/// <summary>Images in the model layout (N x C x H x W floats in [0,1]) with optional labels and ids.</summary>
public sealed class ImageSet
{
    public const int NoLabel = -1;

    public ImageSet(ImageShape shape, float[] pixels, int[] labels, string[] ids, IReadOnlyList<string>? classNames = null)
    {
        if (pixels.Length != labels.Length * shape.PixelCount || ids.Length != labels.Length)
            throw new ArgumentException("pixels, labels and ids disagree on the number of images");
        Shape = shape;
        Pixels = pixels;
        Labels = labels;
        Ids = ids;
        ClassNames = classNames ?? [];
    }

    public ImageShape Shape { get; }
    public float[] Pixels { get; }
    public int[] Labels { get; }
    public string[] Ids { get; }

    /// <summary>Names of the classes when labels came from folder names; label i is ClassNames[i].</summary>
    public IReadOnlyList<string> ClassNames { get; }

    public int Count => Labels.Length;

    public ReadOnlySpan<float> Image(int index) => Pixels.AsSpan(index * Shape.PixelCount, Shape.PixelCount);

    public ImageSet Subset(IReadOnlyList<int> indices)
    {
        int n = Shape.PixelCount;
        var pixels = new float[indices.Count * n];
        var labels = new int[indices.Count];
        var ids = new string[indices.Count];
        for (int i = 0; i < indices.Count; i++)
        {
            Image(indices[i]).CopyTo(pixels.AsSpan(i * n, n));
            labels[i] = Labels[indices[i]];
            ids[i] = Ids[indices[i]];
        }
        return new ImageSet(Shape, pixels, labels, ids, ClassNames);
    }

    public ImageSet Where(Func<int, bool> labelPredicate) =>
        Subset(Enumerable.Range(0, Count).Where(i => labelPredicate(Labels[i])).ToList());

    /// <summary>Resolves a class given as a number or a folder name to its label.</summary>
    public int ResolveClass(string normalClass)
    {
        int byName = ClassNames.ToList().FindIndex(n => string.Equals(n, normalClass, StringComparison.OrdinalIgnoreCase));
        if (byName >= 0) return byName;
        if (int.TryParse(normalClass, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var label))
            return label;
        throw new ArgumentException($"class '{normalClass}' is neither a number nor one of the class folders ({string.Join(", ", ClassNames)})");
    }

    /// <summary>A SHA-256 over the shape and every pixel, so a manifest can say exactly what a model saw.</summary>
    public string Fingerprint()
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(System.Text.Encoding.UTF8.GetBytes($"{Shape}/{Count}/"));
        hash.AppendData(MemoryMarshal.AsBytes(Pixels.AsSpan()));
        return "sha256:" + Convert.ToHexStringLower(hash.GetHashAndReset());
    }
}
