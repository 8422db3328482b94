using AnomalyMonitor.Configuration;
using Microsoft.Extensions.Options;

namespace AnomalyMonitor.Alerts;

public sealed class AlertsOptions
{
    public const string Section = "Alerts";
    public string Topic { get; set; } = "anomaly-monitor/alerts";
    public string StatusTopic { get; set; } = "anomaly-monitor/status";
    /// <summary>After an alert from a source, further anomalies from it within this time are counted, not published.</summary>
    public TimeSpan Cooldown { get; set; } = TimeSpan.Zero;
    public int MaxPerMinute { get; set; } = 600;
    public TimeSpan RetryInterval { get; set; } = TimeSpan.FromSeconds(2);
    /// <summary>A fleet scorer's sample batches kept in the outbox while the broker is away; older ones are dropped and counted.</summary>
    public int OutboxMaxSamples { get; set; } = 2000;
}

internal sealed class AlertsOptionsValidator : IValidateOptions<AlertsOptions>
{
    public ValidateOptionsResult Validate(string? name, AlertsOptions o)
    {
        var f = new List<string>();
        foreach (var (key, topic) in new[] { ("Alerts:Topic", o.Topic), ("Alerts:StatusTopic", o.StatusTopic) })
            if (string.IsNullOrWhiteSpace(topic) || topic.IndexOfAny(['#', '+']) >= 0) f.Add($"{key} must be a topic name without wildcards, was '{topic}'.");
        if (o.Cooldown < TimeSpan.Zero) f.Add($"Alerts:Cooldown must not be negative, was {o.Cooldown}.");
        OptionChecks.AtLeast(f, "Alerts:MaxPerMinute", o.MaxPerMinute, 1);
        OptionChecks.Positive(f, "Alerts:RetryInterval", o.RetryInterval);
        OptionChecks.AtLeast(f, "Alerts:OutboxMaxSamples", o.OutboxMaxSamples, 1);
        return OptionChecks.Result(f);
    }
}
