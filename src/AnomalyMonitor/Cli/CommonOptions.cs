using System.CommandLine;
using AnomalyMonitor.Core.Data;
using AnomalyMonitor.Core.Imaging;

namespace AnomalyMonitor.Cli;

/// <summary>Options shared by several commands, created fresh per command (an option belongs to one parent).</summary>
internal static class CommonOptions
{
    public static Option<string> Device() => new("--device")
    {
        Description = "Compute device: auto (CUDA when available), cpu, cuda or cuda:N.",
        DefaultValueFactory = _ => "auto",
    };

    public static Option<string> Data(bool required = true) => new("--data")
    {
        Description = "An IDX directory (both splits, as MNIST ships), an IDX file, a .npy/.npz file, or a folder of PNG/JPEG/BMP images (class subfolders give labels).",
        Required = required,
    };

    public static Option<string?> NormalClass(string description) => new("--normal-class") { Description = description };

    public static Option<DatasetSplit?> Split() => new("--split")
    {
        Description = "Which split of an IDX directory or npz archive to read: train or test (default: train for train, test for evaluate).",
    };

    public static Option<int?> Limit() => new("--limit") { Description = "Use at most this many images (for a quick run)." };

    public static Option<int> BatchSize(int defaultValue, string description) => new("--batch-size")
    {
        Description = description,
        DefaultValueFactory = _ => defaultValue,
    };

    public static Option<long> MaxBytes() => new("--max-bytes")
    {
        Description = "Largest input file accepted, in bytes; larger ones are rejected as too_large.",
        DefaultValueFactory = _ => DecodeLimits.Default.MaxBytes,
    };

    public static Option<bool> NoResize() => new("--no-resize")
    {
        Description = "Reject images whose size differs from the model input (wrong_dimensions) instead of resizing them.",
    };

    public static DecodeLimits Limits(long maxBytes, bool noResize) =>
        DecodeLimits.Default with { MaxBytes = maxBytes, AllowResize = !noResize };
}
