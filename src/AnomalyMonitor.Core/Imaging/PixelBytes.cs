using System.Runtime.InteropServices;

namespace AnomalyMonitor.Core.Imaging;

/// <summary>
/// Pixels in [0, 1] as stored bytes: one byte a pixel when every value is exactly k/255 (what an 8-bit image
/// decodes to), four (float32) otherwise. Both round-trip exactly; the blob's length says which one it is.
/// </summary>
public static class PixelBytes
{
    /// <summary>
    /// The float of each 8-bit level, k/255. Every decoder reads its values from here, so an 8-bit image
    /// decodes to the same floats on every path (a product with 1/255 differs from the quotient in the last bit
    /// for some k) and packs back to its bytes exactly.
    /// </summary>
    public static ReadOnlySpan<float> Levels => s_levels;

    private static readonly float[] s_levels = [.. Enumerable.Range(0, 256).Select(k => k / 255f)];

    /// <summary>One byte a pixel, or null when some value is not a multiple of 1/255 (then store float32).</summary>
    public static byte[]? TryPack(ReadOnlySpan<float> pixels)
    {
        var packed = new byte[pixels.Length];
        for (int i = 0; i < pixels.Length; i++)
        {
            float p = pixels[i];
            // NaN and values out of [0, 1] fail the range test; anything between two levels fails the second.
            if (!(p >= 0f && p <= 1f)) return null;
            byte b = (byte)MathF.Round(p * 255f);
            if (s_levels[b] != p) return null;
            packed[i] = b;
        }
        return packed;
    }

    /// <summary>The pixels of a blob written by <see cref="Pack"/>: <paramref name="count"/> bytes or 4·count.</summary>
    public static float[] Unpack(ReadOnlySpan<byte> blob, int count)
    {
        if (blob.Length == 4 * count) return MemoryMarshal.Cast<byte, float>(blob).ToArray();
        if (blob.Length != count) throw new InvalidDataException($"a stored image of {blob.Length} bytes holds neither {count} 8-bit nor {count} float32 pixels");
        var pixels = new float[count];
        for (int i = 0; i < count; i++) pixels[i] = s_levels[blob[i]];
        return pixels;
    }

    /// <summary>The bytes to store: packed when exact, else float32.</summary>
    public static byte[] Pack(ReadOnlySpan<float> pixels) => TryPack(pixels) ?? MemoryMarshal.AsBytes(pixels).ToArray();
}
