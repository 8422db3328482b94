using SkiaSharp;

namespace AnomalyMonitor.Core.Imaging;

/// <summary>
/// Turns source pixels (interleaved height x width x channels, values in [0,1]) into the model's
/// channel-first layout, converting grayscale/RGB and resizing through SkiaSharp when sizes differ.
/// </summary>
public static class PixelConverter
{
    public static void ToModelLayout(ReadOnlySpan<float> hwc, int height, int width, int channels,
        ImageShape target, bool allowResize, string item, Span<float> destination)
    {
        if (channels is not (1 or 3 or 4))
            throw new InputRejectedException(item, RejectReason.Unsupported, $"{channels} channels; expected 1, 3 or 4");
        if (height != target.Height || width != target.Width)
        {
            if (!allowResize)
                throw new InputRejectedException(item, RejectReason.WrongDimensions,
                    $"image is {height}x{width}, the model takes {target.Height}x{target.Width}");
            var resized = Resize(hwc, height, width, channels, target.Height, target.Width);
            Interleaved(resized, target.Height, target.Width, channels, target, destination);
            return;
        }
        Interleaved(hwc, height, width, channels, target, destination);
    }

    /// <summary>8-bit gray pixels, one per value, for a one-channel model of the same size.</summary>
    public static void FromGray(ReadOnlySpan<byte> gray, Span<float> destination)
    {
        var levels = PixelBytes.Levels;
        for (int i = 0; i < destination.Length; i++) destination[i] = levels[gray[i]];
    }

    /// <summary>Same as <see cref="ToModelLayout"/> for 8-bit RGBA pixels as SkiaSharp decodes them.</summary>
    public static void FromRgba(ReadOnlySpan<byte> rgba, ImageShape target, Span<float> destination)
    {
        int plane = target.Height * target.Width;
        var levels = PixelBytes.Levels;
        for (int i = 0; i < plane; i++)
        {
            float r = levels[rgba[4 * i]], g = levels[rgba[(4 * i) + 1]], b = levels[rgba[(4 * i) + 2]];
            if (target.Channels == 1)
            {
                destination[i] = Luma(r, g, b);
            }
            else
            {
                destination[i] = r;
                destination[plane + i] = g;
                destination[(2 * plane) + i] = b;
            }
        }
    }

    private static void Interleaved(ReadOnlySpan<float> hwc, int height, int width, int channels, ImageShape target, Span<float> destination)
    {
        int plane = height * width;
        for (int i = 0; i < plane; i++)
        {
            var px = hwc.Slice(i * channels, channels);
            if (target.Channels == 1)
            {
                destination[i] = channels == 1 ? px[0] : Luma(px[0], px[1], px[2]);
            }
            else
            {
                bool gray = channels == 1;
                destination[i] = px[0];
                destination[plane + i] = gray ? px[0] : px[1];
                destination[(2 * plane) + i] = gray ? px[0] : px[2];
            }
        }
    }

    // ITU-R BT.601 luma, the weights PIL and OpenCV use for RGB -> L.
    // A gray pixel kept in RGB is its level, as the same image saved as 8-bit gray decodes: the weighted sum
    // would be off by a rounding step, and only an exact level can be stored at one byte a pixel.
    private static float Luma(float r, float g, float b) => r == g && g == b ? r : (0.299f * r) + (0.587f * g) + (0.114f * b);

    private static float[] Resize(ReadOnlySpan<float> hwc, int height, int width, int channels, int newHeight, int newWidth)
    {
        var info = new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using var source = new SKBitmap(info);
        var pixels = source.GetPixelSpan();
        for (int i = 0; i < height * width; i++)
        {
            var px = hwc.Slice(i * channels, channels);
            for (int c = 0; c < 3; c++)
                pixels[(4 * i) + c] = ToByte(px[channels == 1 ? 0 : c]);
            pixels[(4 * i) + 3] = 255;
        }
        using var resized = source.Resize(new SKImageInfo(newWidth, newHeight, SKColorType.Rgba8888, SKAlphaType.Unpremul),
            new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.None));
        var outPixels = resized.GetPixelSpan();
        var result = new float[newHeight * newWidth * channels];
        for (int i = 0; i < newHeight * newWidth; i++)
            for (int c = 0; c < channels; c++)
                result[(i * channels) + c] = PixelBytes.Levels[outPixels[(4 * i) + Math.Min(c, 2)]];
        return result;
    }

    internal static byte ToByte(float v) => (byte)Math.Clamp((int)MathF.Round(v * 255f), 0, 255);
}
