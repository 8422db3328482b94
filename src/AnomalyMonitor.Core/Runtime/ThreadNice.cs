using System.Globalization;
using System.Runtime.InteropServices;

namespace AnomalyMonitor.Core.Runtime;

/// <summary>
/// The calling thread's nice value. Linux keeps nice per thread (setpriority with PRIO_PROCESS and 0 names
/// the calling thread), and .NET's Thread.Priority does nothing there, so background writers that must
/// give way to the verdict path set it themselves. Raising nice needs no privilege; lowering it does.
/// </summary>
public static partial class ThreadNice
{
    private const int PrioProcess = 0;

    /// <summary>Sets the calling thread's nice value (-20..19); false where that is not possible (not Linux, or not allowed).</summary>
    public static bool TrySetCurrent(int nice)
    {
        if (!OperatingSystem.IsLinux()) return false;
        try
        {
            return SetPriority(PrioProcess, 0, Math.Clamp(nice, -20, 19)) == 0;
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
        {
            return false;
        }
    }

    /// <summary>A thread's nice value as the kernel reports it (/proc/self/task/&lt;tid&gt;/stat), or null off Linux.</summary>
    public static int? Of(int threadId)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/self/task/{threadId}/stat");
            // The thread's name is in parentheses and may hold spaces: the fields are counted after its closing one.
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return int.Parse(fields[16], CultureInfo.InvariantCulture); // field 19 of the whole line: nice
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return null;
        }
    }

    /// <summary>The calling thread's kernel id (what /proc names it by), or -1 off Linux.</summary>
    public static int CurrentThreadId()
    {
        if (!OperatingSystem.IsLinux()) return -1;
        try { return GetTid(); }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException) { return -1; }
    }

    [LibraryImport("libc", EntryPoint = "setpriority", SetLastError = true)]
    private static partial int SetPriority(int which, uint who, int prio);

    [LibraryImport("libc", EntryPoint = "gettid")]
    private static partial int GetTid();
}
