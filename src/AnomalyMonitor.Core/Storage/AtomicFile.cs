namespace AnomalyMonitor.Core.Storage;

/// <summary>Writes a file so that a reader sees the old content or the new, never a half-written one.</summary>
public static class AtomicFile
{
    public static void Write(string path, ReadOnlySpan<byte> content)
    {
        var temp = TempPathFor(path);
        try
        {
            using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                stream.Write(content);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, path, overwrite: true);
        }
        finally
        {
            // A write that failed (a full disk, every save interval) would otherwise leave its uniquely named temp file for ever.
            Remove(temp);
        }
    }

    /// <summary>Lets <paramref name="write"/> produce a file at a temporary path, flushes it to disk and renames it into place.</summary>
    public static void Write(string path, Action<string> write)
    {
        var temp = TempPathFor(path);
        try
        {
            write(temp);
            using (var stream = new FileStream(temp, FileMode.Open, FileAccess.ReadWrite, FileShare.None))
                stream.Flush(flushToDisk: true);
            File.Move(temp, path, overwrite: true);
        }
        finally
        {
            Remove(temp);
        }
    }

    // Never throws: the write's own exception is the one the caller must see.
    private static void Remove(string temp)
    {
        try { File.Delete(temp); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    private static string TempPathFor(string path) =>
        Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, $".{Path.GetFileName(path)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
}
