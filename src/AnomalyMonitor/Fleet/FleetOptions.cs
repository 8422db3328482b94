using System.Text.RegularExpressions;
using AnomalyMonitor.Configuration;
using Microsoft.Extensions.Options;

namespace AnomalyMonitor.Fleet;

public sealed partial class FleetOptions
{
    public const string Section = "Fleet";

    /// <summary>
    /// This service's name among others on the same broker: in its MQTT client ids (a broker gives a session
    /// to one connection at a time), alerts, status messages and the instance metric label. Empty: the host name.
    /// </summary>
    public string Instance { get; set; } = "";

    /// <summary>The instance name in effect: Instance, or the host name, lower-cased and kept to letters, digits, '.', '_' and '-'.</summary>
    public string EffectiveInstance => string.IsNullOrWhiteSpace(Instance) ? Clean(Environment.MachineName) : Instance.Trim();

    internal static string Clean(string name)
    {
        var cleaned = NotAllowed().Replace(name.ToLowerInvariant(), "-").Trim('-');
        return cleaned.Length == 0 ? "anomaly-monitor" : cleaned;
    }

    [GeneratedRegex("[^a-z0-9._-]+")]
    private static partial Regex NotAllowed();

    [GeneratedRegex("^[A-Za-z0-9._-]{1,64}$")]
    internal static partial Regex Valid();
}

internal sealed class FleetOptionsValidator : IValidateOptions<FleetOptions>
{
    public ValidateOptionsResult Validate(string? name, FleetOptions o)
    {
        var f = new List<string>();
        if (!string.IsNullOrWhiteSpace(o.Instance) && !FleetOptions.Valid().IsMatch(o.Instance.Trim()))
            f.Add($"Fleet:Instance must be 1-64 letters, digits, '.', '_' or '-' (it goes into MQTT client ids and topics), was '{o.Instance}'.");
        return OptionChecks.Result(f);
    }
}
