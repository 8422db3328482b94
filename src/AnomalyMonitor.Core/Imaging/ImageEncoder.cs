using SkiaSharp;

namespace AnomalyMonitor.Core.Imaging;

/// <summary>Writes model-layout images and error maps as PNG (evidence files, plots and tests).</summary>
public static class ImageEncoder
{
    public static SKBitmap ToBitmap(ReadOnlySpan<float> chw, ImageShape shape)
    {
        var bitmap = new SKBitmap(new SKImageInfo(shape.Width, shape.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        var pixels = bitmap.GetPixelSpan();
        int plane = shape.Height * shape.Width;
        for (int i = 0; i < plane; i++)
        {
            for (int c = 0; c < 3; c++)
                pixels[(4 * i) + c] = PixelConverter.ToByte(chw[(shape.Channels == 1 ? 0 : c * plane) + i]);
            pixels[(4 * i) + 3] = 255;
        }
        return bitmap;
    }

    /// <summary>A per-pixel error map in an "inferno"-like ramp, scaled to the given maximum (0 means the map's own maximum).</summary>
    public static SKBitmap ToHeatmap(ReadOnlySpan<float> errorMap, int height, int width, float max = 0)
    {
        if (max <= 0)
        {
            foreach (var e in errorMap) max = Math.Max(max, e);
            if (max <= 0) max = 1;
        }
        var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        var pixels = bitmap.GetPixelSpan();
        for (int i = 0; i < height * width; i++)
        {
            float t = Math.Clamp(errorMap[i] / max, 0f, 1f);
            // Black -> purple -> orange -> yellow: readable and monotone in brightness.
            pixels[4 * i] = PixelConverter.ToByte(Math.Min(1f, 1.6f * t));
            pixels[(4 * i) + 1] = PixelConverter.ToByte(Math.Clamp((1.6f * t) - 0.6f, 0f, 1f));
            pixels[(4 * i) + 2] = PixelConverter.ToByte(t < 0.4f ? 1.2f * t : Math.Max(0f, 0.48f - (1.2f * (t - 0.4f))));
            pixels[(4 * i) + 3] = 255;
        }
        return bitmap;
    }

    // Zlib level 1 with the Sub filter: two to three times faster than Skia's default (level 6, every filter
    // tried on each row), and no larger on small images (docs/benchmarks.md, "The evidence writer").
    private static readonly SKPngEncoderOptions Fast = new(SKPngEncoderFilterFlags.Sub, 1);

    public static byte[] EncodePng(SKBitmap bitmap)
    {
        using var pixmap = bitmap.PeekPixels() ?? throw new InvalidOperationException("the bitmap has no pixels to encode");
        using var data = pixmap.Encode(Fast) ?? throw new InvalidOperationException($"SkiaSharp could not encode a {bitmap.ColorType} bitmap as PNG");
        return data.ToArray();
    }

    /// <summary>Single-channel images as 8-bit grayscale PNG (a quarter of the pixels to compress), colour as RGBA.</summary>
    public static byte[] EncodePng(ReadOnlySpan<float> chw, ImageShape shape)
    {
        using var bitmap = shape.Channels == 1 ? ToGrayBitmap(chw, shape) : ToBitmap(chw, shape);
        return EncodePng(bitmap);
    }

    private static SKBitmap ToGrayBitmap(ReadOnlySpan<float> plane, ImageShape shape)
    {
        var bitmap = new SKBitmap(new SKImageInfo(shape.Width, shape.Height, SKColorType.Gray8, SKAlphaType.Opaque));
        var pixels = bitmap.GetPixelSpan();
        for (int i = 0; i < shape.Height * shape.Width; i++) pixels[i] = PixelConverter.ToByte(plane[i]);
        return bitmap;
    }
}
