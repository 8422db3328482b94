using AnomalyMonitor.Core.Imaging;

namespace AnomalyMonitor.Core.Data;

/// <summary>Reads a stream to its end, refusing the item as too large once more than a cap has come out of it.</summary>
internal static class BoundedRead
{
    public static byte[] All(Stream stream, string item, long cap)
    {
        using var memory = new MemoryStream();
        var buffer = new byte[81920];
        int n;
        while ((n = stream.Read(buffer)) > 0)
        {
            // Checked before the write: a decompression bomb never grows the buffer past the cap.
            if (memory.Length + n > cap)
                throw new InputRejectedException(item, RejectReason.TooLarge, $"more than {cap} bytes of data");
            memory.Write(buffer, 0, n);
        }
        return memory.ToArray();
    }
}
