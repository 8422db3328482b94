using System.Globalization;

namespace AnomalyMonitor.Benchmarks;

/// <summary>
/// CPU time of each of this process's threads, from /proc/self/task/*/stat, grouped by thread name: the stage
/// stopwatches time only the code they wrap, and this says which threads the rest of the process's CPU went to
/// (libtorch's workers, the GC, MQTTnet's and the thread pool's). Caveats: Linux cuts names to 15 characters (".NET Tiered
/// Com" is the JIT's tier-up thread); libtorch's OpenMP workers have no names of their own and carry their creator's, so
/// they count under "scoring" or "scoring lane"; a thread that ends between two snapshots takes its CPU with it.
/// </summary>
internal static class ThreadCpu
{
    /// <summary>Clock ticks (USER_HZ, 100 a second on Linux) of user plus system time, by thread id.</summary>
    public static Dictionary<int, (string Name, long Ticks)> Snapshot()
    {
        var threads = new Dictionary<int, (string, long)>();
        foreach (var dir in Directory.EnumerateDirectories("/proc/self/task"))
        {
            string stat;
            try { stat = File.ReadAllText(Path.Combine(dir, "stat")); }
            catch (IOException) { continue; } // the thread ended meanwhile
            // "tid (name) state ...": the name may hold spaces and parentheses, so split at the last ')'.
            int open = stat.IndexOf('('), close = stat.LastIndexOf(')');
            var fields = stat[(close + 2)..].Split(' ');
            // After the name: state is field 0, utime field 11, stime field 12.
            long ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
            threads[int.Parse(stat[..open].Trim(), CultureInfo.InvariantCulture)] = (stat[(open + 1)..close], ticks);
        }
        return threads;
    }

    /// <summary>The CPU microseconds per item each thread name took between two snapshots, the largest first.</summary>
    public static string PerItem(Dictionary<int, (string Name, long Ticks)> before, Dictionary<int, (string Name, long Ticks)> after, long items, int top = 6) =>
        string.Join(", ", after
            .Select(t => (t.Value.Name, Ticks: t.Value.Ticks - (before.TryGetValue(t.Key, out var b) ? b.Ticks : 0)))
            .GroupBy(t => t.Name, (name, group) => (Name: name, Us: group.Sum(g => g.Ticks) * 1e4 / items, Count: group.Count(g => g.Ticks > 0)))
            .Where(g => g.Us > 0)
            .OrderByDescending(g => g.Us)
            .Take(top)
            .Select(g => $"{g.Name}{(g.Count > 1 ? $" ×{g.Count}" : "")} {g.Us:0}"));
}
