using System.Buffers.Binary;
using System.IO.Compression;
using AnomalyMonitor.Core.Imaging;

namespace AnomalyMonitor.Core.Data;

/// <summary>Reads IDX files (the MNIST format), gzipped or raw: uint8 images (magic 0x803) and labels (0x801).</summary>
public static class IdxReader
{
    internal static RawImages ReadImages(string path, DecodeLimits limits)
    {
        var bytes = ReadAll(path, limits);
        var (count, dims, body) = Header(path, bytes, expectedDims: 3);
        // Images of no pixels would pass the length check with any count and size a buffer by the count alone.
        if (dims[0] == 0 || dims[1] == 0)
            throw new InputRejectedException(path, RejectReason.WrongDimensions, $"images of {dims[0]}x{dims[1]} pixels");
        long expected = (long)count * dims[0] * dims[1];
        if (body.Length < expected)
            throw new InputRejectedException(path, RejectReason.Truncated, $"header promises {count} images of {dims[0]}x{dims[1]} ({expected} bytes) but {body.Length} bytes follow");
        if ((long)dims[0] * dims[1] > limits.MaxPixels)
            throw new InputRejectedException(path, RejectReason.TooLarge, $"{dims[0]}x{dims[1]} images exceed the pixel limit");
        var values = new float[expected];
        for (long i = 0; i < expected; i++) values[i] = PixelBytes.Levels[body[(int)i]];
        return new RawImages(values, count, dims[0], dims[1], 1);
    }

    public static int[] ReadLabels(string path, DecodeLimits limits)
    {
        var bytes = ReadAll(path, limits);
        var (count, _, body) = Header(path, bytes, expectedDims: 1);
        if (body.Length < count)
            throw new InputRejectedException(path, RejectReason.Truncated, $"header promises {count} labels but {body.Length} bytes follow");
        var labels = new int[count];
        for (int i = 0; i < count; i++) labels[i] = body[i];
        return labels;
    }

    public static bool IsIdxPath(string path)
    {
        var name = Path.GetFileName(path);
        return name.Contains("-ubyte", StringComparison.OrdinalIgnoreCase) || name.Contains(".idx", StringComparison.OrdinalIgnoreCase)
            || name.EndsWith(".idx", StringComparison.OrdinalIgnoreCase);
    }

    private static (int Count, int[] Dims, byte[] Body) Header(string path, byte[] bytes, int expectedDims)
    {
        if (bytes.Length == 0)
            throw new InputRejectedException(path, RejectReason.Empty, "the file is empty");
        if (bytes.Length < 4)
            throw new InputRejectedException(path, RejectReason.Truncated, "the IDX header is cut short");
        if (bytes[0] != 0 || bytes[1] != 0)
            throw new InputRejectedException(path, RejectReason.Unsupported, "not an IDX file (bad magic number)");
        if (bytes[2] != 0x08)
            throw new InputRejectedException(path, RejectReason.Unsupported, $"IDX element type 0x{bytes[2]:x2} is not uint8");
        int dims = bytes[3];
        if (dims != expectedDims)
            throw new InputRejectedException(path, RejectReason.WrongDimensions, $"IDX file has {dims} dimensions, expected {expectedDims}");
        int headerLength = 4 + (4 * dims);
        if (bytes.Length < headerLength)
            throw new InputRejectedException(path, RejectReason.Truncated, "the IDX header is cut short");
        var sizes = new int[dims];
        for (int d = 0; d < dims; d++)
        {
            sizes[d] = BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(4 + (4 * d)));
            if (sizes[d] < 0)
                throw new InputRejectedException(path, RejectReason.Corrupt, $"IDX dimension {d} is negative");
        }
        return (sizes[0], sizes[1..], bytes[headerLength..]);
    }

    private static byte[] ReadAll(string path, DecodeLimits limits)
    {
        using var file = File.OpenRead(path);
        if (file.Length == 0)
            throw new InputRejectedException(path, RejectReason.Empty, "the file is empty");
        var magic = new byte[2];
        int read = file.Read(magic);
        file.Position = 0;
        bool gzip = read == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
        try
        {
            using var source = gzip ? new GZipStream(file, CompressionMode.Decompress) : (Stream)file;
            // IDX files are dense, so the decompressed size bounds the pixel count: capped like any batch file.
            return BoundedRead.All(source, path, limits.ExpansionCap);
        }
        catch (InvalidDataException e)
        {
            throw new InputRejectedException(path, RejectReason.Corrupt, $"the gzip stream is damaged ({e.Message})");
        }
        catch (EndOfStreamException)
        {
            throw new InputRejectedException(path, RejectReason.Truncated, "the gzip stream ends early");
        }
    }
}
