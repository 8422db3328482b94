using AnomalyMonitor.Configuration;
using Microsoft.Extensions.Options;

namespace AnomalyMonitor.Samples;

public sealed class NormalStoreOptions
{
    public const string Section = "NormalStore";
    public string Path { get; set; } = "state/normals.db";
    public int Capacity { get; set; } = 20_000;
    /// <summary>
    /// At most this many accepted normals a second are stored (after a burst of BurstSeconds' worth):
    /// at thousands of items a second, storing all would turn the store over every few seconds and spend
    /// the hot path on writes; an even sample spans a longer stretch. 0 stores every accepted normal.
    /// </summary>
    public int MaxPerSecond { get; set; } = 500;
    /// <summary>
    /// Seconds of MaxPerSecond a flood may store at once after a quiet spell. One: a flood is then sampled as
    /// evenly as a steady stream, instead of storing its first seconds whole (ten did that for the first 5,000
    /// images of every flood; throughput did not change either way, docs/benchmarks.md, 4b).
    /// </summary>
    public double BurstSeconds { get; set; } = 1;
}

internal sealed class NormalStoreOptionsValidator : IValidateOptions<NormalStoreOptions>
{
    public ValidateOptionsResult Validate(string? name, NormalStoreOptions o)
    {
        var f = new List<string>();
        if (string.IsNullOrWhiteSpace(o.Path)) f.Add("NormalStore:Path must be set.");
        OptionChecks.AtLeast(f, "NormalStore:Capacity", o.Capacity, 1);
        OptionChecks.AtLeast(f, "NormalStore:MaxPerSecond", o.MaxPerSecond, 0);
        if (!double.IsFinite(o.BurstSeconds) || o.BurstSeconds <= 0 || (o.MaxPerSecond > 0 && o.MaxPerSecond * o.BurstSeconds < 1))
            f.Add($"NormalStore:BurstSeconds must be a positive number of seconds worth at least one sample at MaxPerSecond, was {o.BurstSeconds}.");
        return OptionChecks.Result(f);
    }
}
