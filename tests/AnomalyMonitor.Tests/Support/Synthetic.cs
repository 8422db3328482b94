using AnomalyMonitor.Core.Data;
using AnomalyMonitor.Core.Imaging;

namespace AnomalyMonitor.Tests.Support;

/// <summary>Small generated images: smooth blobs are "normal"; stripes and noise are anomalies.</summary>
public static class Synthetic
{
    public static float[] Blob(Random rng, int size)
    {
        var image = new float[size * size];
        double cx = rng.NextDouble() * size * 0.5 + size * 0.25, cy = rng.NextDouble() * size * 0.5 + size * 0.25;
        double sigma = size * (0.12 + 0.08 * rng.NextDouble());
        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
                image[y * size + x] = (float)Math.Exp(-(((x - cx) * (x - cx)) + ((y - cy) * (y - cy))) / (2 * sigma * sigma));
        return image;
    }

    public static float[] Stripes(Random rng, int size)
    {
        var image = new float[size * size];
        int period = 2 + rng.Next(3);
        bool vertical = rng.Next(2) == 0;
        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
                image[y * size + x] = ((vertical ? x : y) / period) % 2 == 0 ? 1f : 0f;
        return image;
    }

    public static float[] Noise(Random rng, int size) =>
        Enumerable.Range(0, size * size).Select(_ => (float)rng.NextDouble()).ToArray();

    /// <summary>
    /// N latent codes of d values, row after row, shaped as an encoder's are: the j-th value with standard deviation
    /// 0.2 + j / 8 (anisotropic), and with <paramref name="styles"/> &gt; 0 two styles at ±styles on the first axis.
    /// </summary>
    public static float[] Codes(int n, int d, int seed, double styles = 0)
    {
        var rng = new Random(seed);
        var codes = new float[n * d];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < d; j++)
                codes[(i * d) + j] = (float)((j == 0 ? (i % 2 == 0 ? styles : -styles) : 0)
                    + ((0.2 + (j / 8.0)) * Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble())));
        return codes;
    }

    /// <summary>Labels: 0 blob (normal), 1 stripes, 2 noise.</summary>
    public static ImageSet Set(int blobs, int stripes, int noise, int size = 16, int seed = 1)
    {
        var rng = new Random(seed);
        var images = new List<(float[] Pixels, int Label)>();
        for (int i = 0; i < blobs; i++) images.Add((Blob(rng, size), 0));
        for (int i = 0; i < stripes; i++) images.Add((Stripes(rng, size), 1));
        for (int i = 0; i < noise; i++) images.Add((Noise(rng, size), 2));
        return new ImageSet(new ImageShape(1, size, size), images.SelectMany(i => i.Pixels).ToArray(),
            images.Select(i => i.Label).ToArray(), images.Select((_, i) => $"synthetic#{i}").ToArray());
    }

    public static byte[] ToBytes(float[] pixels) => pixels.Select(p => (byte)Math.Clamp((int)Math.Round(p * 255), 0, 255)).ToArray();

    public static byte[] Png(float[] pixels, int size, int channels = 1) =>
        ImageEncoder.EncodePng(channels == 1 ? pixels : [.. pixels, .. pixels, .. pixels], new ImageShape(channels, size, size));
}
