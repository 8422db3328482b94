using System.Buffers;
using SkiaSharp;

namespace AnomalyMonitor.Core.Imaging;

/// <summary>Decodes PNG, JPEG and BMP through SkiaSharp into the model layout, refusing bad input with a reason.</summary>
public static class ImageDecoder
{
    public static readonly string[] Extensions = [".png", ".jpg", ".jpeg", ".bmp"];

    public static bool IsImagePath(string path) =>
        Extensions.Contains(Path.GetExtension(path), StringComparer.OrdinalIgnoreCase);

    /// <summary>Recognises the three supported formats by their magic bytes, whatever the file is called.</summary>
    public static bool LooksLikeImage(ReadOnlySpan<byte> bytes) =>
        bytes.StartsWith((ReadOnlySpan<byte>)[0x89, 0x50, 0x4E, 0x47])
        || bytes.StartsWith((ReadOnlySpan<byte>)[0xFF, 0xD8, 0xFF])
        || bytes.StartsWith("BM"u8);

    public static float[] Decode(ReadOnlySpan<byte> bytes, string item, ImageShape target, DecodeLimits? limits = null)
    {
        var result = new float[target.PixelCount];
        Decode(bytes, item, target, limits ?? DecodeLimits.Default, result);
        return result;
    }

    public static unsafe void Decode(ReadOnlySpan<byte> bytes, string item, ImageShape target, DecodeLimits limits, Span<float> destination)
    {
        if (bytes.IsEmpty)
            throw new InputRejectedException(item, RejectReason.Empty, "the file is empty");
        if (bytes.Length > limits.MaxBytes)
            throw new InputRejectedException(item, RejectReason.TooLarge, $"{bytes.Length} bytes exceeds the limit of {limits.MaxBytes}");
        if (!LooksLikeImage(bytes))
            throw new InputRejectedException(item, RejectReason.Unsupported, "not a PNG, JPEG or BMP image");

        // The payload is read in place (pinned for the call) and decoded into a pooled buffer: per image, only
        // Skia's codec is allocated.
        fixed (byte* input = bytes)
        {
            using var data = SKData.Create((IntPtr)input, bytes.Length);
            using var codec = SKCodec.Create(data);
            if (codec is null)
            {
                // Refused: ask again through a stream, which says why (rare, so the cost does not matter).
                using var stream = new SKMemoryStream(data);
                using var again = SKCodec.Create(stream, out var createResult);
                var reason = createResult == SKCodecResult.IncompleteInput ? RejectReason.Truncated : RejectReason.Corrupt;
                throw new InputRejectedException(item, reason, $"the image header could not be read ({createResult})");
            }
            DecodeWith(codec, item, target, limits, destination);
        }
    }

    private static unsafe void DecodeWith(SKCodec codec, string item, ImageShape target, DecodeLimits limits, Span<float> destination)
    {
        var size = codec.Info;
        if ((long)size.Width * size.Height > limits.MaxPixels)
            throw new InputRejectedException(item, RejectReason.TooLarge,
                $"{size.Width}x{size.Height} pixels exceeds the limit of {limits.MaxPixels}");
        if (size.Width <= 0 || size.Height <= 0)
            throw new InputRejectedException(item, RejectReason.Corrupt, "the image has no pixels");
        if (!limits.AllowResize && (size.Width != target.Width || size.Height != target.Height))
            throw new InputRejectedException(item, RejectReason.WrongDimensions,
                $"image is {size.Height}x{size.Width}, the model takes {target.Height}x{target.Width}");

        bool same = size.Width == target.Width && size.Height == target.Height;
        // A gray image for a gray model is decoded as it is, a quarter of the bytes; anything else as RGBA.
        bool gray = same && target.Channels == 1 && size.ColorType == SKColorType.Gray8;
        var info = new SKImageInfo(size.Width, size.Height, gray ? SKColorType.Gray8 : SKColorType.Rgba8888, SKAlphaType.Unpremul);
        var buffer = ArrayPool<byte>.Shared.Rent(info.BytesSize);
        try
        {
            fixed (byte* pixels = buffer)
            {
                var decoded = codec.GetPixels(info, (IntPtr)pixels);
                if (decoded == SKCodecResult.IncompleteInput)
                    throw new InputRejectedException(item, RejectReason.Truncated, "the image data ends early");
                if (decoded != SKCodecResult.Success)
                    throw new InputRejectedException(item, RejectReason.Corrupt, $"the image data could not be decoded ({decoded})");
                var span = buffer.AsSpan(0, info.BytesSize);
                if (gray)
                {
                    PixelConverter.FromGray(span, destination[..target.PixelCount]);
                }
                else if (same)
                {
                    PixelConverter.FromRgba(span, target, destination);
                }
                else
                {
                    using var bitmap = new SKBitmap();
                    bitmap.InstallPixels(info, (IntPtr)pixels);
                    Resize(bitmap, item, target, destination);
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static void Resize(SKBitmap bitmap, string item, ImageShape target, Span<float> destination)
    {
        using var resized = bitmap.Resize(new SKImageInfo(target.Width, target.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul),
            new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.None))
            ?? throw new InputRejectedException(item, RejectReason.Corrupt, "the image could not be resized");
        PixelConverter.FromRgba(resized.GetPixelSpan(), target, destination);
    }
}
