using AnomalyMonitor.Configuration;
using Microsoft.Extensions.Options;

namespace AnomalyMonitor.Evidence;

public sealed class EvidenceOptions
{
    public const string Section = "Evidence";
    public string Path { get; set; } = "evidence";
    public int MaxCount { get; set; } = 10_000;
    public TimeSpan MaxAge { get; set; } = TimeSpan.FromDays(30);

    /// <summary>
    /// The evidence writer thread's nice value, 0..19 (0: as the service). Writing and deleting records costs
    /// about 2 ms of CPU an anomaly; at 10 it takes the cores only when the verdict path leaves them.
    /// </summary>
    public int WriterNice { get; set; } = 10;
}

internal sealed class EvidenceOptionsValidator : IValidateOptions<EvidenceOptions>
{
    public ValidateOptionsResult Validate(string? name, EvidenceOptions o)
    {
        var f = new List<string>();
        if (string.IsNullOrWhiteSpace(o.Path)) f.Add("Evidence:Path must be set.");
        OptionChecks.AtLeast(f, "Evidence:MaxCount", o.MaxCount, 1);
        OptionChecks.Positive(f, "Evidence:MaxAge", o.MaxAge);
        if (o.WriterNice is < 0 or > 19) f.Add($"Evidence:WriterNice must be 0..19, was {o.WriterNice}.");
        return OptionChecks.Result(f);
    }
}
