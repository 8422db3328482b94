using AnomalyMonitor.Core.Storage;
using AnomalyMonitor.State;
using System.Text;
using Microsoft.Extensions.Options;

namespace AnomalyMonitor.Ingest;

/// <summary>Keeps refused payloads that have no file of their own (MQTT) under state/quarantine, with the reason beside them.</summary>
public sealed class Quarantine(IOptions<ServiceOptions> service, PathResolver paths)
{
    public string Folder => Path.Combine(paths.Resolve(service.Value.StateDirectory), "quarantine");

    public string Keep(string itemId, ReadOnlySpan<byte> payload, string reason)
    {
        Directory.CreateDirectory(Folder);
        var name = new StringBuilder();
        foreach (var c in itemId.Length > 80 ? itemId[^80..] : itemId) name.Append(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '_');
        // The id is already cut to its last 80 characters; the suffix keeps redeliveries apart.
        var path = Path.Combine(Folder, $"{name.ToString().Trim('.')}.{Guid.NewGuid().ToString("N")[..12]}.bin");
        File.WriteAllBytes(path, payload);
        AtomicFile.Write(path[..^4] + ".reason.txt", Encoding.UTF8.GetBytes($"{itemId}: {reason}\n"));
        return path;
    }
}
