using System.Buffers.Binary;
using System.Globalization;
using System.IO.Compression;
using System.Text;
using System.Text.RegularExpressions;
using AnomalyMonitor.Core.Imaging;

namespace AnomalyMonitor.Core.Data;

/// <summary>A numeric array read from a .npy file (or one member of a .npz archive).</summary>
public sealed record NpyArray(long[] Shape, float[] Values, string Dtype);

/// <summary>
/// Reads NumPy's .npy format (versions 1-3, C order) and .npz archives of them. Image arrays may be
/// uint8 (0-255) or float (0-1, or 0-255 which is rescaled); label arrays any integer type.
/// </summary>
public static partial class NpyReader
{
    public static NpyArray Read(Stream stream, string item, DecodeLimits limits) =>
        Parse(BoundedRead.All(stream, item, limits.ExpansionCap), item, limits);

    public static Dictionary<string, NpyArray> ReadNpz(string path, DecodeLimits limits)
    {
        var result = new Dictionary<string, NpyArray>(StringComparer.Ordinal);
        try
        {
            using var zip = ZipFile.OpenRead(path);
            // The cap holds for the arrays together: many arrays each under it would add up to any size.
            long left = limits.ExpansionCap;
            foreach (var entry in zip.Entries.Where(e => e.FullName.EndsWith(".npy", StringComparison.Ordinal)))
            {
                if (entry.Length > left)
                    throw new InputRejectedException(path, RejectReason.TooLarge, $"its arrays hold more than {limits.ExpansionCap} bytes uncompressed ({entry.FullName}: {entry.Length})");
                using var s = entry.Open();
                var bytes = BoundedRead.All(s, $"{path}:{entry.FullName}", left); // the stated length may lie
                left -= bytes.Length;
                result[entry.FullName[..^4]] = Parse(bytes, $"{path}:{entry.FullName}", limits);
            }
        }
        catch (InvalidDataException e)
        {
            throw new InputRejectedException(path, RejectReason.Corrupt, $"not a readable .npz (zip) archive ({e.Message})");
        }
        if (result.Count == 0)
            throw new InputRejectedException(path, RejectReason.Empty, "the archive holds no .npy arrays");
        return result;
    }

    public static NpyArray Parse(byte[] bytes, string item, DecodeLimits limits)
    {
        if (bytes.Length == 0)
            throw new InputRejectedException(item, RejectReason.Empty, "the file is empty");
        bool magic = bytes.Length >= 6 && bytes[0] == 0x93 && bytes.AsSpan(1, 5).SequenceEqual("NUMPY"u8);
        if (!magic)
            throw new InputRejectedException(item, RejectReason.Unsupported, "not a .npy file (bad magic)");
        if (bytes.Length < 12)
            throw new InputRejectedException(item, RejectReason.Truncated, "the .npy header is cut short");
        int major = bytes[6];
        // A version 2 header's length is a uint32: kept in a long, so that a huge one cannot turn negative.
        long headerLength = major == 1 ? BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(8)) : BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(8));
        int headerStart = major == 1 ? 10 : 12;
        if (bytes.Length < headerStart + headerLength)
            throw new InputRejectedException(item, RejectReason.Truncated, "the .npy header is cut short");
        string header = Encoding.Latin1.GetString(bytes, headerStart, (int)headerLength);

        var descr = DescrPattern().Match(header);
        var shapeMatch = ShapePattern().Match(header);
        if (!descr.Success || !shapeMatch.Success)
            throw new InputRejectedException(item, RejectReason.Corrupt, "the .npy header has no dtype or shape");
        if (FortranPattern().IsMatch(header))
            throw new InputRejectedException(item, RejectReason.Unsupported, "Fortran-ordered arrays are not supported; save with C order");

        var sizes = shapeMatch.Groups[1].Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var shape = new long[sizes.Length];
        long count = 1;
        string dtype = descr.Groups[1].Value;
        int size = ElementSize(item, dtype);
        for (int d = 0; d < sizes.Length; d++)
        {
            if (!long.TryParse(sizes[d], NumberStyles.None, CultureInfo.InvariantCulture, out shape[d]))
                throw new InputRejectedException(item, RejectReason.Corrupt, $"the .npy shape ({shapeMatch.Groups[1].Value}) is not a list of sizes");
            // Checked as it grows: a product of huge sizes would wrap past the limit.
            if (shape[d] > 0 && count > limits.ExpansionCap / size / shape[d])
                throw new InputRejectedException(item, RejectReason.TooLarge, $"shape ({shapeMatch.Groups[1].Value}) exceeds the size limit");
            count *= shape[d];
        }
        long dataStart = headerStart + headerLength;
        if (bytes.Length - dataStart < count * size)
            throw new InputRejectedException(item, RejectReason.Truncated, $"shape ({string.Join(", ", shape)}) needs {count * size} bytes of data, {bytes.Length - dataStart} follow");

        var data = bytes.AsSpan((int)dataStart);
        var values = new float[count];
        bool bigEndian = dtype[0] == '>';
        char kind = dtype[1];
        for (long i = 0; i < count; i++)
        {
            var e = data.Slice((int)(i * size), size);
            values[i] = (kind, size) switch
            {
                ('u', 1) or ('b', 1) => e[0],
                ('i', 1) => (sbyte)e[0],
                ('i', 2) => bigEndian ? BinaryPrimitives.ReadInt16BigEndian(e) : BinaryPrimitives.ReadInt16LittleEndian(e),
                ('u', 2) => bigEndian ? BinaryPrimitives.ReadUInt16BigEndian(e) : BinaryPrimitives.ReadUInt16LittleEndian(e),
                ('i', 4) => bigEndian ? BinaryPrimitives.ReadInt32BigEndian(e) : BinaryPrimitives.ReadInt32LittleEndian(e),
                ('i', 8) => bigEndian ? BinaryPrimitives.ReadInt64BigEndian(e) : BinaryPrimitives.ReadInt64LittleEndian(e),
                ('f', 4) => bigEndian ? BinaryPrimitives.ReadSingleBigEndian(e) : BinaryPrimitives.ReadSingleLittleEndian(e),
                ('f', 8) => (float)(bigEndian ? BinaryPrimitives.ReadDoubleBigEndian(e) : BinaryPrimitives.ReadDoubleLittleEndian(e)),
                _ => throw new InputRejectedException(item, RejectReason.Unsupported, $"dtype {dtype} is not supported"),
            };
        }
        return new NpyArray(shape, values, dtype);
    }

    /// <summary>Scales an image array to [0,1]: uint8 by 1/255; floats by 1/255 only when they exceed 1.</summary>
    internal static RawImages ToImages(NpyArray array, string item)
    {
        if (array.Shape.Length < 2)
            throw new InputRejectedException(item, RejectReason.WrongDimensions, $"array shape ({string.Join(", ", array.Shape)}) is not a stack of images");
        var values = array.Values;
        bool integer = array.Dtype[1] is 'u' or 'i' or 'b';
        float max = 0;
        foreach (var v in values)
        {
            if (!float.IsFinite(v))
                throw new InputRejectedException(item, RejectReason.Corrupt, "the array holds NaN or infinite values");
            if (v < 0)
                throw new InputRejectedException(item, RejectReason.Corrupt, "the array holds negative pixel values");
            max = Math.Max(max, v);
        }
        if (integer || max > 1f)
        {
            if (max > 255f)
                throw new InputRejectedException(item, RejectReason.Corrupt, $"pixel values reach {max}, beyond 0-255");
            for (int i = 0; i < values.Length; i++) values[i] /= 255f;
        }
        return RawImages.FromArray(item, array.Shape, values);
    }

    private static int ElementSize(string item, string dtype)
    {
        if (dtype.Length < 3 || !int.TryParse(dtype.AsSpan(2), NumberStyles.Integer, CultureInfo.InvariantCulture, out var size) || size is not (1 or 2 or 4 or 8))
            throw new InputRejectedException(item, RejectReason.Unsupported, $"dtype {dtype} is not supported");
        return size;
    }

    [GeneratedRegex(@"'descr'\s*:\s*'([<>|=][a-z]\d+)'")]
    private static partial Regex DescrPattern();

    [GeneratedRegex(@"'shape'\s*:\s*\(([^)]*)\)")]
    private static partial Regex ShapePattern();

    [GeneratedRegex(@"'fortran_order'\s*:\s*True")]
    private static partial Regex FortranPattern();
}
