using System.Diagnostics;

namespace AnomalyMonitor.Tests.Support;

/// <summary>Runs a command-line tool (promtool, systemd-analyze) to completion.</summary>
public static class Tool
{
    public static async Task<(int Code, string Output)> RunAsync(string file, string args, string? stdin = null, string? workingDirectory = null)
    {
        var start = new ProcessStartInfo(file, args)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = stdin is not null,
            WorkingDirectory = workingDirectory ?? Directory.GetCurrentDirectory(),
        };
        using var p = Process.Start(start)!;
        if (stdin is not null)
        {
            await p.StandardInput.WriteAsync(stdin);
            p.StandardInput.Close();
        }
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        return (p.ExitCode, await stdout + await stderr);
    }

    /// <summary>The repository's root, found from the test binaries' folder.</summary>
    public static string RepositoryRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Monitor.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("Monitor.sln not found above " + AppContext.BaseDirectory);
    }
}
