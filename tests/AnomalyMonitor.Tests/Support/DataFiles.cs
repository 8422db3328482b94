using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace AnomalyMonitor.Tests.Support;

/// <summary>Writes IDX and .npy/.npz files by the published format, independently of the readers under test.</summary>
public static class DataFiles
{
    public static byte[] IdxImages(IReadOnlyList<byte[]> images, int rows, int cols)
    {
        var bytes = new byte[16 + images.Count * rows * cols];
        BinaryPrimitives.WriteInt32BigEndian(bytes, 0x803);
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4), images.Count);
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(8), rows);
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(12), cols);
        for (int i = 0; i < images.Count; i++) images[i].CopyTo(bytes, 16 + i * rows * cols);
        return bytes;
    }

    public static byte[] IdxLabels(IReadOnlyList<int> labels)
    {
        var bytes = new byte[8 + labels.Count];
        BinaryPrimitives.WriteInt32BigEndian(bytes, 0x801);
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4), labels.Count);
        for (int i = 0; i < labels.Count; i++) bytes[8 + i] = (byte)labels[i];
        return bytes;
    }

    public static byte[] Gzip(byte[] data)
    {
        using var memory = new MemoryStream();
        using (var gz = new GZipStream(memory, CompressionLevel.Fastest)) gz.Write(data);
        return memory.ToArray();
    }

    public static byte[] Npy(string descr, long[] shape, byte[] data)
    {
        string shapeText = shape.Length == 1 ? $"({shape[0]},)" : $"({string.Join(", ", shape)})";
        string header = $"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shapeText}, }}";
        int total = 10 + header.Length + 1;
        header = header.PadRight(header.Length + (64 - total % 64) % 64) + "\n";
        var result = new List<byte> { 0x93 };
        result.AddRange("NUMPY"u8.ToArray());
        result.Add(1);
        result.Add(0);
        result.AddRange(BitConverter.GetBytes((ushort)header.Length));
        result.AddRange(Encoding.ASCII.GetBytes(header));
        result.AddRange(data);
        return [.. result];
    }

    public static byte[] NpyFloat(long[] shape, float[] values) =>
        Npy("<f4", shape, values.SelectMany(BitConverter.GetBytes).ToArray());

    public static void Npz(string path, params (string Name, byte[] Npy)[] arrays)
    {
        using var zip = ZipFile.Open(path, ZipArchiveMode.Create);
        foreach (var (name, npy) in arrays)
        {
            using var s = zip.CreateEntry(name + ".npy").Open();
            s.Write(npy);
        }
    }
}
