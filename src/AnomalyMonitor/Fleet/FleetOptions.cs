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

    /// <summary>
    /// standalone (the default: retrains on its own normals), scorer (judges and forwards its accepted normals,
    /// never retrains; takes its models from the trainer) or trainer (the one that retrains, numbers versions,
    /// rolls back, and publishes each model it installs; it may also score).
    /// </summary>
    public string Role { get; set; } = Standalone;

    /// <summary>The retained topic that carries the fleet's current model from the trainer to the scorers.</summary>
    public string ModelTopic { get; set; } = "anomaly-monitor/fleet/model";

    /// <summary>The topic on which scorers send their accepted normals to the trainer (QoS 1, batched, through the outbox).</summary>
    public string SamplesTopic { get; set; } = "anomaly-monitor/fleet/samples";

    /// <summary>A fleet model message larger than this is refused before it is parsed.</summary>
    public int MaxModelBytes { get; set; } = 64 * 1024 * 1024;

    /// <summary>A samples message larger than this is refused before it is read (on the trainer).</summary>
    public int MaxSampleMessageBytes { get; set; } = 64 * 1024 * 1024;

    public const string Standalone = "standalone";
    public const string Scorer = "scorer";
    public const string Trainer = "trainer";

    public bool IsScorer => string.Equals(Role, Scorer, StringComparison.OrdinalIgnoreCase);
    public bool IsTrainer => string.Equals(Role, Trainer, StringComparison.OrdinalIgnoreCase);
    public string RoleName => IsScorer ? Scorer : IsTrainer ? Trainer : Standalone;

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
        if (!new[] { FleetOptions.Standalone, FleetOptions.Scorer, FleetOptions.Trainer }.Contains(o.Role, StringComparer.OrdinalIgnoreCase))
            f.Add($"Fleet:Role must be standalone, scorer or trainer, was '{o.Role}'.");
        if (string.IsNullOrWhiteSpace(o.ModelTopic) || o.ModelTopic.IndexOfAny(['#', '+']) >= 0)
            f.Add($"Fleet:ModelTopic must be a topic name without wildcards, was '{o.ModelTopic}'.");
        if (string.IsNullOrWhiteSpace(o.SamplesTopic) || o.SamplesTopic.IndexOfAny(['#', '+']) >= 0)
            f.Add($"Fleet:SamplesTopic must be a topic name without wildcards, was '{o.SamplesTopic}'.");
        OptionChecks.AtLeast(f, "Fleet:MaxModelBytes", o.MaxModelBytes, 1024);
        OptionChecks.AtLeast(f, "Fleet:MaxSampleMessageBytes", o.MaxSampleMessageBytes, 1024);
        return OptionChecks.Result(f);
    }
}
