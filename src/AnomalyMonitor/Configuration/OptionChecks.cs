using Microsoft.Extensions.Options;

namespace AnomalyMonitor.Configuration;

/// <summary>
/// The checks every options validator shares. Each validator collects all of its failures, so that a bad
/// appsettings.json is one clean, non-zero exit listing every problem (what systemd's journal shows).
/// </summary>
internal static class OptionChecks
{
    public static ValidateOptionsResult Result(List<string> failures) =>
        failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);

    public static void Positive(List<string> f, string name, TimeSpan value)
    {
        if (value <= TimeSpan.Zero) f.Add($"{name} must be a positive time span (e.g. \"00:00:05\"), was {value}.");
    }

    public static void AtLeast(List<string> f, string name, double value, double min)
    {
        if (value < min) f.Add($"{name} must be at least {min}, was {value}.");
    }
}
