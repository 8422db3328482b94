using AnomalyMonitor.Configuration;
using Microsoft.Extensions.Options;

namespace AnomalyMonitor.Feedback;

public sealed class FeedbackOptions
{
    public const string Section = "Feedback";
    /// <summary>Operators publish {"id": "...", "label": "normal"|"anomaly"} here; empty turns the topic off.</summary>
    public string Topic { get; set; } = "anomaly-monitor/feedback";
}

internal sealed class FeedbackOptionsValidator : IValidateOptions<FeedbackOptions>
{
    public ValidateOptionsResult Validate(string? name, FeedbackOptions o)
    {
        var f = new List<string>();
        if (!string.IsNullOrEmpty(o.Topic) && (o.Topic.Contains('#', StringComparison.Ordinal) || o.Topic.Contains('+', StringComparison.Ordinal)))
            f.Add($"Feedback:Topic must be a plain topic without wildcards, was '{o.Topic}'.");
        return OptionChecks.Result(f);
    }
}
