using System.Diagnostics;

namespace AnomalyMonitor.Tests.Support;

/// <summary>
/// A real Mosquitto broker (Debian package "mosquitto", installed by .ci/run) on a free loopback port,
/// persisting sessions to disk so a restart keeps queued messages, as a production broker would, with the
/// settings the README tells admins to install (config/mosquitto/anomaly-monitor.conf).
/// </summary>
public sealed class Mosquitto : IAsyncDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "am-mosquitto-" + Guid.NewGuid().ToString("N")[..10]);
    private Process? _process;

    public int Port { get; } = Ports.Free();
    public string Address => $"127.0.0.1:{Port}";
    public string PersistenceFile => Path.Combine(_dir, "mosquitto.db");

    /// <summary>With a user, the broker refuses anonymous clients and checks a password file made by mosquitto_passwd.</summary>
    private (string User, string Password)? _login;

    /// <summary>The settings the README tells admins to install (config/mosquitto/anomaly-monitor.conf, copied beside the tests).</summary>
    private static string ShippedSettings => Path.Combine(AppContext.BaseDirectory, "mosquitto", "anomaly-monitor.conf");

    /// <summary>
    /// Lines appended to the broker's configuration, for a benchmark's A/B: a repeated true/false or number option
    /// (set_tcp_nodelay false) takes the last value, but a repeated path is refused and a listener adds a listener.
    /// </summary>
    private IReadOnlyList<string> _extra = [];

    public static async Task<Mosquitto> StartAsync((string User, string Password)? login = null, IReadOnlyList<string>? extraConfig = null)
    {
        var broker = new Mosquitto { _login = login, _extra = extraConfig ?? [] };
        await broker.StartProcessAsync();
        return broker;
    }

    public async Task StartProcessAsync()
    {
        Directory.CreateDirectory(_dir);
        // Started as root (CI), mosquitto drops to the "mosquitto" user: it must be able to write its
        // persistence file here, or sessions would silently not survive a restart.
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(_dir, (UnixFileMode)0b111_111_111);
        var conf = Path.Combine(_dir, "mosquitto.conf");
        var auth = "allow_anonymous true";
        if (_login is { } login)
        {
            var passwords = Path.Combine(_dir, "passwords");
            using (var p = Process.Start("mosquitto_passwd", ["-c", "-b", passwords, login.User, login.Password])!) await p.WaitForExitAsync();
            auth = $"allow_anonymous false\npassword_file {passwords}";
        }
        await File.WriteAllTextAsync(conf, $"""
            listener {Port} 127.0.0.1
            {auth}
            persistence true
            persistence_location {_dir}/
            log_dest file {_dir}/mosquitto.log
            {await File.ReadAllTextAsync(ShippedSettings)}
            """ + string.Concat(_extra.Select(line => "\n" + line)));
        var binary = File.Exists("/usr/sbin/mosquitto") ? "/usr/sbin/mosquitto" : "mosquitto";
        _process = Process.Start(new ProcessStartInfo(binary, ["-c", conf]) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true })
            ?? throw new InvalidOperationException("mosquitto did not start; install the Debian package 'mosquitto'");
        try { await Ports.WaitOpenAsync(Port, TimeSpan.FromSeconds(10)); }
        catch (System.Net.Sockets.SocketException) when (_process.HasExited)
        {
            throw new InvalidOperationException($"mosquitto exited with {_process.ExitCode}: {await _process.StandardError.ReadToEndAsync()}");
        }
    }

    /// <summary>Stops the broker the way systemd would (SIGTERM), which writes its persistence file.</summary>
    public async Task StopAsync()
    {
        if (_process is null || _process.HasExited) return;
        Process.Start("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!.WaitForExit();
        await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
        _process.Dispose();
        _process = null;
    }

    public async ValueTask DisposeAsync()
    {
        try { _process?.Kill(); } catch (InvalidOperationException) { }
        if (_process is not null) await _process.WaitForExitAsync();
        _process?.Dispose();
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }
}
