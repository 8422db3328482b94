using System.Runtime.InteropServices;

namespace AnomalyMonitor.Pipeline.Scoring;

/// <summary>
/// Lowers the calling thread's CPU priority (its nice value, which Linux keeps per thread). The scoring threads
/// are the only ones that run for milliseconds at a time; everything an item waits for besides them (the MQTT
/// receive loop, decoding, the sinks, the alert publisher, the broker) runs for microseconds and then sleeps. At
/// an equal nice value a thread that wakes behind a busy scoring thread can wait out the scheduler's slice; at a
/// higher one it preempts the scorer at once, and the scorer still gets every cycle nobody else wants. libgomp's
/// worker threads are created by the thread that first runs a parallel region and inherit its value, so this is
/// called before the thread's first batch.
/// </summary>
public static partial class ScoringPriority
{
    private const int PrioProcess = 0;

    /// <summary>Sets the calling thread's nice value to <paramref name="nice"/> (0: leaves it); false where the system refused.</summary>
    public static bool Apply(int nice)
    {
        if (nice == 0 || !OperatingSystem.IsLinux()) return true;
        try
        {
            // PRIO_PROCESS with a thread id sets that one thread on Linux (setpriority(2), "Bugs").
            return SetPriority(PrioProcess, GetTid(), nice) == 0;
        }
        catch (EntryPointNotFoundException)
        {
            return false;
        }
    }

    /// <summary>The calling thread's nice value, or null off Linux.</summary>
    public static int? Current()
    {
        if (!OperatingSystem.IsLinux()) return null;
        Marshal.SetLastPInvokeError(0);
        int value = GetPriority(PrioProcess, GetTid());
        return value == -1 && Marshal.GetLastPInvokeError() != 0 ? null : value;
    }

    [LibraryImport("libc", EntryPoint = "setpriority", SetLastError = true)]
    private static partial int SetPriority(int which, int who, int prio);

    [LibraryImport("libc", EntryPoint = "getpriority", SetLastError = true)]
    private static partial int GetPriority(int which, int who);

    [LibraryImport("libc", EntryPoint = "gettid")]
    private static partial int GetTid();
}
