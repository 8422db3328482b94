using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;

namespace AnomalyMonitor.Tests.Support;

/// <summary>
/// The real executable as a child process (`anomaly-monitor run`), configured through ANOMALYMONITOR__
/// environment variables over <see cref="TestService.Defaults"/>, with its paths under its own root:
/// what a kill -9 is done to.
/// </summary>
public sealed class ServiceProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly HttpClient _http;

    private ServiceProcess(Process process, int port)
    {
        _process = process;
        _http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(5) };
    }

    public static ServiceProcess Start(string root, IDictionary<string, string?> settings)
    {
        Directory.CreateDirectory(root);
        int port = Ports.Free();
        var all = TestService.Defaults();
        foreach (var (k, v) in settings) all[k] = v;
        all["Web:Urls"] = $"http://127.0.0.1:{port}";
        var start = new ProcessStartInfo("dotnet") { WorkingDirectory = root, UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(CliProcess.Dll);
        start.ArgumentList.Add("run");
        foreach (var (k, v) in all) start.Environment["ANOMALYMONITOR__" + k.Replace(":", "__", StringComparison.Ordinal)] = v;
        var process = Process.Start(start)!;
        // Drained to files, so a chatty child never blocks on a full pipe, and a failure can be read afterwards.
        _ = DrainAsync(process.StandardOutput, Path.Combine(root, "stdout.log"));
        _ = DrainAsync(process.StandardError, Path.Combine(root, "stderr.log"));
        return new ServiceProcess(process, port);
    }

    private static async Task DrainAsync(StreamReader reader, string file)
    {
        await using var writer = new StreamWriter(file) { AutoFlush = true };
        while (await reader.ReadLineAsync() is { } line) await writer.WriteLineAsync(line);
    }

    public bool Exited => _process.HasExited;

    /// <summary>/api/status, or null while the process does not answer.</summary>
    public async Task<JsonElement?> StatusAsync()
    {
        try
        {
            return await _http.GetFromJsonAsync<JsonElement>("/api/status");
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return null;
        }
    }

    /// <summary>SIGKILL: no shutdown code runs.</summary>
    public void Kill()
    {
        _process.Kill();
        _process.WaitForExit();
    }

    /// <summary>SIGTERM, as systemctl stop sends it; the exit code once the process has stopped, or -1 (and SIGKILL) after <paramref name="seconds"/>.</summary>
    public async Task<int> TerminateAsync(int seconds = 30)
    {
        using (var term = Process.Start("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!) await term.WaitForExitAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(seconds));
        try
        {
            await _process.WaitForExitAsync(timeout.Token);
            return _process.ExitCode;
        }
        catch (OperationCanceledException)
        {
            _process.Kill();
            return -1;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited) await TerminateAsync(seconds: 20);
        _process.Dispose();
        _http.Dispose();
    }
}
