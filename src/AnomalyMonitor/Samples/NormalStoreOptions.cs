using AnomalyMonitor.Configuration;
using Microsoft.Extensions.Options;

namespace AnomalyMonitor.Samples;

public sealed class NormalStoreOptions
{
    public const string Section = "NormalStore";
    public string Path { get; set; } = "state/normals.db";
    public int Capacity { get; set; } = 20_000;
}

internal sealed class NormalStoreOptionsValidator : IValidateOptions<NormalStoreOptions>
{
    public ValidateOptionsResult Validate(string? name, NormalStoreOptions o)
    {
        var f = new List<string>();
        if (string.IsNullOrWhiteSpace(o.Path)) f.Add("NormalStore:Path must be set.");
        OptionChecks.AtLeast(f, "NormalStore:Capacity", o.Capacity, 1);
        return OptionChecks.Result(f);
    }
}
