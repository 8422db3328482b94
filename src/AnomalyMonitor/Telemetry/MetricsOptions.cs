using Microsoft.Extensions.Options;

namespace AnomalyMonitor.Telemetry;

public sealed class MetricsOptions
{
    public const string Section = "Metrics";
    /// <summary>Distinct values of the "source" label (it comes from senders); the rest are counted as source="other".</summary>
    public int MaxSources { get; set; } = 100;
}

internal sealed class MetricsOptionsValidator : IValidateOptions<MetricsOptions>
{
    public ValidateOptionsResult Validate(string? name, MetricsOptions options) =>
        options.MaxSources < 1
            ? ValidateOptionsResult.Fail($"Metrics:MaxSources must be at least 1, was {options.MaxSources}.")
            : ValidateOptionsResult.Success;
}
