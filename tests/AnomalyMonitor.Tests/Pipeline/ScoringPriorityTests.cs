using AnomalyMonitor.Pipeline.Scoring;
using AnomalyMonitor.Tests.Support;

namespace AnomalyMonitor.Tests.Pipeline;

/// <summary>Models:ScoringNice: the scoring thread, and no other, runs at the configured nice value.</summary>
public sealed class ScoringPriorityTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public void Apply_sets_the_calling_thread_only()
    {
        int before = ScoringPriority.Current()!.Value;
        int target = Math.Min(19, before + 3); // raising a nice value needs no privilege
        int? seen = null;
        bool applied = false;
        var thread = new Thread(() =>
        {
            applied = ScoringPriority.Apply(target);
            seen = ScoringPriority.Current();
        });
        thread.Start();
        thread.Join();
        Assert.True(applied);
        Assert.Equal(target, seen);
        Assert.Equal(before, ScoringPriority.Current());
    }

    [Fact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public async Task The_service_scoring_thread_runs_at_Models_ScoringNice()
    {
        int target = Math.Min(19, ScoringPriority.Current()!.Value + 7);
        TestModel.CopyTo(Path.Combine(_dir.Path, "models"));
        await using var service = await TestService.StartAsync(_dir.Path, new Dictionary<string, string?> { ["Models:ScoringNice"] = target.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        // Other tests' services run scoring threads in this process too, at the default: one at the target is this one's.
        await Wait.UntilAsync(() => ThreadNices("scoring").Contains(target), $"a thread named 'scoring' at nice {target}");
        Assert.DoesNotContain(target, ThreadNices(".NET TP Worker"));
    }

    /// <summary>The nice values of this process's threads named <paramref name="name"/> (field 19 of /proc/self/task/TID/stat).</summary>
    private static List<int> ThreadNices(string name)
    {
        var nices = new List<int>();
        foreach (var task in Directory.GetDirectories("/proc/self/task"))
        {
            try
            {
                if (File.ReadAllText(Path.Combine(task, "comm")).Trim() != name) continue;
                var stat = File.ReadAllText(Path.Combine(task, "stat"));
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                nices.Add(int.Parse(fields[16], System.Globalization.CultureInfo.InvariantCulture)); // fields from the third (state) on
            }
            catch (IOException)
            {
                // the thread ended while we looked
            }
        }
        return nices;
    }
}
