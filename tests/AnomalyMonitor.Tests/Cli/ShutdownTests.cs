using AnomalyMonitor.Cli;
using AnomalyMonitor.Tests.Support;

namespace AnomalyMonitor.Tests.Cli;

/// <summary>`run` stops as systemd stops it: SIGTERM, a graceful drain through the host, exit code 0.</summary>
public sealed class ShutdownTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Only_run_leaves_the_termination_signals_to_its_host()
    {
        // System.CommandLine's default ends the process 2 s after SIGTERM, whatever the host is still doing.
        Assert.Null(CommandLine.Invocation(CommandLine.Build().Parse(["run"])).ProcessTerminationTimeout);
        Assert.Equal(TimeSpan.FromSeconds(2), CommandLine.Invocation(CommandLine.Build().Parse(["train", "--data", "x"])).ProcessTerminationTimeout);
    }

    [Fact]
    public async Task The_real_service_stops_on_SIGTERM_through_its_host_with_exit_code_0()
    {
        TestModel.InstallAsV1(Path.Combine(_dir.Path, "models"));
        await using var service = ServiceProcess.Start(_dir.Path, new Dictionary<string, string?> { ["Logging:LogLevel:Default"] = "Information" });
        await Wait.UntilAsync(async () => await service.StatusAsync() is { } s && s.GetProperty("ready").GetBoolean(), "the service ready");
        var inbox = Path.Combine(_dir.Path, "inbox");
        File.WriteAllBytes(Path.Combine(inbox, "one.png"), TestModel.NormalPng(1));
        await Wait.UntilAsync(() => File.Exists(Path.Combine(inbox, "processed", "normal", "one.png")), "one image judged");

        Assert.Equal(0, await service.TerminateAsync());
        var output = await File.ReadAllTextAsync(Path.Combine(_dir.Path, "stdout.log"));
        Assert.Contains("Shutting down", output, StringComparison.Ordinal);
    }
}
