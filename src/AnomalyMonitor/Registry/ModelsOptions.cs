using AnomalyMonitor.Configuration;
using Microsoft.Extensions.Options;

namespace AnomalyMonitor.Registry;

public sealed class ModelsOptions
{
    public const string Section = "Models";
    /// <summary>The model directory: a model (manifest.json) or a registry whose "current" names one.</summary>
    public string Path { get; set; } = "models";
    public string Device { get; set; } = "auto";
    /// <summary>Threads libtorch may use for scoring; 0 keeps libtorch's default (all cores).</summary>
    public int Threads { get; set; }
    /// <summary>
    /// Batches of fewer images than this score on one libtorch thread (0: always Threads). A small batch gains
    /// little from a second thread, and on a busy CPU its forward pass waits for whichever thread was descheduled:
    /// at half load on 2 cores, 16 cut the publish-to-alert p99 from 142–152 ms to 35–71 ms (docs/benchmarks.md, 4b).
    /// </summary>
    public int SmallBatch { get; set; } = 16;
    /// <summary>
    /// Scoring threads, each on half of Threads, a batch starting on whichever is free: 1 or 2, or 0 for two
    /// on the CPU (with at least 2 threads) and one on CUDA (untried there). On 2 cores a queued backlog drained
    /// 1.28–1.71x faster with two lanes than with one (docs/benchmarks.md, 4b, "Scoring lanes").
    /// </summary>
    public int Lanes { get; set; }
    /// <summary>Versions v&lt;N&gt; kept in the registry (the newest ones); the current version is always kept.</summary>
    public int KeepVersions { get; set; } = 5;
}

internal sealed class ModelsOptionsValidator : IValidateOptions<ModelsOptions>
{
    public ValidateOptionsResult Validate(string? name, ModelsOptions o)
    {
        var f = new List<string>();
        if (string.IsNullOrWhiteSpace(o.Path)) f.Add("Models:Path must name the model directory.");
        var d = (o.Device ?? "").Trim().ToLowerInvariant();
        if (d is not ("auto" or "cpu") && !System.Text.RegularExpressions.Regex.IsMatch(d, "^cuda(:[0-9]+)?$"))
            f.Add($"Models:Device must be auto, cpu, cuda or cuda:N, was '{o.Device}'.");
        if (o.Threads < 0) f.Add($"Models:Threads must be 0 (libtorch's default) or more, was {o.Threads}.");
        if (o.SmallBatch < 0) f.Add($"Models:SmallBatch must be 0 (off) or more, was {o.SmallBatch}.");
        if (o.Lanes is < 0 or > 2) f.Add($"Models:Lanes must be 0 (automatic), 1 or 2, was {o.Lanes}.");
        OptionChecks.AtLeast(f, "Models:KeepVersions", o.KeepVersions, 1);
        return OptionChecks.Result(f);
    }
}
