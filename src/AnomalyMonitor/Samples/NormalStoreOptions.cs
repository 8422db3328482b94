using AnomalyMonitor.Configuration;
using Microsoft.Extensions.Options;

namespace AnomalyMonitor.Samples;

public sealed class NormalStoreOptions
{
    public const string Section = "NormalStore";
    public string Path { get; set; } = "state/normals.db";
    public int Capacity { get; set; } = 20_000;
    /// <summary>
    /// At most this many accepted normals a second are stored (a burst of ten seconds' worth is allowed):
    /// at thousands of items a second, storing all would turn the store over every few seconds and spend
    /// the hot path on writes; an even sample spans a longer stretch. 0 stores every accepted normal.
    /// </summary>
    public int MaxPerSecond { get; set; } = 500;
}

internal sealed class NormalStoreOptionsValidator : IValidateOptions<NormalStoreOptions>
{
    public ValidateOptionsResult Validate(string? name, NormalStoreOptions o)
    {
        var f = new List<string>();
        if (string.IsNullOrWhiteSpace(o.Path)) f.Add("NormalStore:Path must be set.");
        OptionChecks.AtLeast(f, "NormalStore:Capacity", o.Capacity, 1);
        OptionChecks.AtLeast(f, "NormalStore:MaxPerSecond", o.MaxPerSecond, 0);
        return OptionChecks.Result(f);
    }
}
