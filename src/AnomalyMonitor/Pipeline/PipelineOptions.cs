using AnomalyMonitor.Configuration;
using Microsoft.Extensions.Options;

namespace AnomalyMonitor.Pipeline;

public sealed class PipelineOptions
{
    public const string Section = "Pipeline";
    /// <summary>Items waiting to be decoded; when full, sources wait (back-pressure) and memory stays capped.</summary>
    public int QueueCapacity { get; set; } = 1024;
    public int DecodeWorkers { get; set; } = 2;
    public int MaxBatchSize { get; set; } = 32;
    /// <summary>
    /// How long a partial batch may wait for company while the scorer has room for it. 0: it goes at once, and batches
    /// grow only while the scorer is busy, which a load makes it (as Triton's dynamic batcher does by default). At a
    /// tenth of capacity that halved the median alert latency and at half load it shortened the tail, with floods still
    /// scored in full batches (docs/benchmarks.md, 4b).
    /// </summary>
    public TimeSpan MaxBatchWait { get; set; } = TimeSpan.Zero;
    /// <summary>An item the pipeline hands back (a failure, not a shutdown) is offered again after this, doubling each time...</summary>
    public TimeSpan RetryDelay { get; set; } = TimeSpan.FromSeconds(1);
    /// <summary>...up to this...</summary>
    public TimeSpan RetryMaxDelay { get; set; } = TimeSpan.FromMinutes(1);
    /// <summary>...and after this many attempts it is rejected (reason "failed") rather than retried for ever.</summary>
    public int MaxAttempts { get; set; } = 10;
    /// <summary>Resize images of another size to the model input. Off by default: a wrong size usually means a misconfigured sender, so it is rejected (wrong_dimensions).</summary>
    public bool AllowResize { get; set; }
}

internal sealed class PipelineOptionsValidator : IValidateOptions<PipelineOptions>
{
    public ValidateOptionsResult Validate(string? name, PipelineOptions o)
    {
        var f = new List<string>();
        OptionChecks.AtLeast(f, "Pipeline:QueueCapacity", o.QueueCapacity, 1);
        OptionChecks.AtLeast(f, "Pipeline:DecodeWorkers", o.DecodeWorkers, 1);
        OptionChecks.AtLeast(f, "Pipeline:MaxBatchSize", o.MaxBatchSize, 1);
        if (o.MaxBatchWait < TimeSpan.Zero) f.Add($"Pipeline:MaxBatchWait must not be negative, was {o.MaxBatchWait}.");
        OptionChecks.Positive(f, "Pipeline:RetryDelay", o.RetryDelay);
        if (o.RetryMaxDelay < o.RetryDelay) f.Add("Pipeline:RetryMaxDelay must not be below Pipeline:RetryDelay.");
        OptionChecks.AtLeast(f, "Pipeline:MaxAttempts", o.MaxAttempts, 1);
        return OptionChecks.Result(f);
    }
}
