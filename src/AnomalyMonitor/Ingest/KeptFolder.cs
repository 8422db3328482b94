namespace AnomalyMonitor.Ingest;

/// <summary>What one retention pass over a folder did.</summary>
public readonly record struct RetentionPass(int DeletedFiles, long DeletedBytes, long KeptBytes, int Failures, string? FirstError);

/// <summary>
/// One retention pass over a folder of kept inputs: whatever arrived longer than MaxAge ago goes, then the
/// oldest until the folder holds at most MaxBytes. Age is the inode change time, which the move into the
/// folder sets, so a file copied in with an old modification time still gets its full term. Links are removed
/// as links and never followed, and subfolders are walked only when they are real directories: a link in
/// rejected/ can point anywhere.
/// The pass reads the folder twice and keeps only bytes per minute of arrival in between, and the files of the
/// one minute the byte limit falls in, never a list of the whole folder: a processed/ of millions costs a
/// few kilobytes. A file and its .reason.txt (written a millisecond apart) nearly always go in the same pass.
/// </summary>
public static class KeptFolder
{
    private const int MaxDepth = 4;

    public static RetentionPass Prune(string root, KeptFolderOptions options, DateTime nowUtc)
    {
        if (options.MaxAge <= TimeSpan.Zero && options.MaxBytes <= 0) return default;
        var errors = new Errors();
        var perMinute = new SortedDictionary<long, long>();
        long total = 0;
        foreach (var (_, info) in Entries(root, errors))
        {
            long minute = Minute(info);
            perMinute[minute] = perMinute.GetValueOrDefault(minute) + info.Size;
            total += info.Size;
        }

        var byAge = options.MaxAge > TimeSpan.Zero ? nowUtc - options.MaxAge : DateTime.MinValue;
        // The byte limit falls inside one minute of arrivals: older minutes go whole, and that minute's files oldest first.
        long cutMinute = long.MinValue;
        if (options.MaxBytes > 0 && total > options.MaxBytes)
        {
            long left = total;
            foreach (var (minute, bytes) in perMinute)
            {
                cutMinute = minute;
                left -= bytes;
                if (left <= options.MaxBytes) break;
            }
        }
        if (byAge == DateTime.MinValue && cutMinute == long.MinValue) return new(0, 0, total, errors.Count, errors.First);

        int deleted = 0;
        long deletedBytes = 0;
        void Delete(string path, long size)
        {
            try
            {
                File.Delete(path); // unlinks a link itself
                deleted++;
                deletedBytes += size;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { errors.Add(path, e); }
        }
        var boundary = new List<(string Path, EntryInfo Info)>();
        // Read again rather than remembered: what arrived since the first read is newer than either cut. A folder
        // that could not be read was counted in the first read already.
        foreach (var (path, info) in Entries(root, new Errors()))
        {
            if (info.ChangedUtc < byAge || Minute(info) < cutMinute) Delete(path, info.Size);
            else if (Minute(info) == cutMinute) boundary.Add((path, info));
        }
        // Equal times (a coarse clock) fall back to the name, so the order is the same at every pass.
        foreach (var (path, info) in boundary.OrderBy(e => e.Info.ChangedUtc).ThenBy(e => e.Path, StringComparer.Ordinal))
        {
            if (total - deletedBytes <= options.MaxBytes) break;
            Delete(path, info.Size);
        }
        return new(deleted, deletedBytes, total - deletedBytes, errors.Count, errors.First);
    }

    private static long Minute(EntryInfo info) => info.ChangedUtc.Ticks / TimeSpan.TicksPerMinute;

    /// <summary>
    /// Every entry but directories, found by walking real subdirectories only. Streamed, never listed whole:
    /// processed/normal is one flat folder that can hold tens of millions of files. (Deleting what was already
    /// returned while the directory is read is safe: readdir returns each remaining entry once.)
    /// </summary>
    private static IEnumerable<(string Path, EntryInfo Info)> Entries(string dir, Errors errors, int depth = 0)
    {
        IEnumerator<string>? names = null;
        try
        {
            while (true)
            {
                string path;
                try
                {
                    names ??= Directory.EnumerateFileSystemEntries(dir).GetEnumerator(); // opens the directory at once
                    if (!names.MoveNext()) yield break;
                    path = names.Current;
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    if (depth > 0 || Directory.Exists(dir)) errors.Add(dir, e); // a folder not made yet is no error
                    yield break;
                }
                EntryInfo info;
                try { info = FileKinds.Describe(path); }
                catch (IOException e)
                {
                    errors.Add(path, e);
                    continue;
                }
                if (info.Kind == FileKind.Missing) continue;
                if (info.Kind != FileKind.Directory) yield return (path, info);
                else if (depth < MaxDepth)
                    foreach (var inner in Entries(path, errors, depth + 1)) yield return inner;
            }
        }
        finally
        {
            names?.Dispose();
        }
    }

    private sealed class Errors
    {
        public int Count { get; private set; }
        public string? First { get; private set; }

        public void Add(string path, Exception e)
        {
            Count++;
            First ??= $"{path}: {e.Message}";
        }
    }
}
