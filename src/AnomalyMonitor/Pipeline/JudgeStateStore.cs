using AnomalyMonitor.State;
using System.Text.Json;
using AnomalyMonitor.Core.Storage;
using AnomalyMonitor.Core.Thresholds;
using Microsoft.Extensions.Options;

namespace AnomalyMonitor.Pipeline;

/// <summary>Saves the judge's window so that a restart neither alerts in a storm nor goes blind.</summary>
public sealed class JudgeStateStore(IOptions<ServiceOptions> service, PathResolver paths)
{
    private string FilePath => Path.Combine(paths.Resolve(service.Value.StateDirectory), "judge-state.json");

    public void Save(JudgeState state)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(FilePath)!);
        AtomicFile.Write(FilePath, JsonSerializer.SerializeToUtf8Bytes(state));
    }

    public JudgeState? Load()
    {
        if (!File.Exists(FilePath)) return null;
        try
        {
            return JsonSerializer.Deserialize<JudgeState>(File.ReadAllBytes(FilePath));
        }
        catch (JsonException)
        {
            return null; // a damaged state file costs the window, not the service
        }
    }
}
