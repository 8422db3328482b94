namespace AnomalyMonitor.State;

/// <summary>
/// Resolves relative paths from the configuration: against systemd's state directory when the unit
/// sets StateDirectory= (so the service never writes into its install folder), else the working directory.
/// </summary>
public sealed class PathResolver(string baseDirectory)
{
    public static PathResolver FromEnvironment() =>
        new(Environment.GetEnvironmentVariable("STATE_DIRECTORY")?.Split(':')[0] is { Length: > 0 } state ? state : Directory.GetCurrentDirectory());

    public string BaseDirectory { get; } = baseDirectory;

    public string Resolve(string path) => Path.IsPathRooted(path) ? path : Path.GetFullPath(Path.Combine(BaseDirectory, path));
}
