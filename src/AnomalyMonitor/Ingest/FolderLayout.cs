namespace AnomalyMonitor.Ingest;

/// <summary>The watched folder and the subfolders files move through.</summary>
public sealed class FolderLayout(string root)
{
    /// <summary>Without a trailing separator: entries are matched by their parent, which never has one.</summary>
    public string Root { get; } = Path.TrimEndingDirectorySeparator(root);
    public string Processing => Path.Combine(Root, "processing");
    public string Normal => Path.Combine(Root, "processed", "normal");
    public string Anomaly => Path.Combine(Root, "processed", "anomaly");
    public string Rejected => Path.Combine(Root, "rejected");

    public void Create()
    {
        foreach (var d in new[] { Root, Processing, Normal, Anomaly, Rejected }) Directory.CreateDirectory(d);
    }

    /// <summary>The subfolders this source made itself; never candidates, never reported.</summary>
    public bool IsOwnFolder(string path) =>
        path == Processing || path == Rejected || path == Path.Combine(Root, "processed");

    /// <summary>Names a writer is still producing (or hides) are never taken.</summary>
    public static bool Ignored(string name) =>
        name.StartsWith('.') || name.EndsWith(".tmp", StringComparison.OrdinalIgnoreCase)
        || name.EndsWith(".partial", StringComparison.OrdinalIgnoreCase) || name.EndsWith('~');

    /// <summary>Moves a file into a folder, adding a suffix rather than overwriting an earlier file of the same name.</summary>
    public static string MoveInto(string file, string folder)
    {
        var name = Path.GetFileName(file);
        var target = Path.Combine(folder, name);
        for (int i = 1; !NoReplaceMove.TryMove(file, target); i++)
            target = Path.Combine(folder, $"{Path.GetFileNameWithoutExtension(name)}.{i}{Path.GetExtension(name)}");
        return target;
    }
}
