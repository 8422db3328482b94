using AnomalyMonitor.Configuration;
using Microsoft.Extensions.Options;

namespace AnomalyMonitor.Evidence;

public sealed class EvidenceOptions
{
    public const string Section = "Evidence";
    public string Path { get; set; } = "evidence";
    public int MaxCount { get; set; } = 10_000;
    public TimeSpan MaxAge { get; set; } = TimeSpan.FromDays(30);
}

internal sealed class EvidenceOptionsValidator : IValidateOptions<EvidenceOptions>
{
    public ValidateOptionsResult Validate(string? name, EvidenceOptions o)
    {
        var f = new List<string>();
        if (string.IsNullOrWhiteSpace(o.Path)) f.Add("Evidence:Path must be set.");
        OptionChecks.AtLeast(f, "Evidence:MaxCount", o.MaxCount, 1);
        OptionChecks.Positive(f, "Evidence:MaxAge", o.MaxAge);
        return OptionChecks.Result(f);
    }
}
