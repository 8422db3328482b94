using AnomalyMonitor.Configuration;

namespace AnomalyMonitor.Ingest;

/// <summary>How much of one folder of kept inputs stays: the oldest files go first. 0 means no limit.</summary>
public sealed class KeptFolderOptions
{
    public TimeSpan MaxAge { get; set; }
    public long MaxBytes { get; set; }
}

/// <summary>
/// The inputs the service keeps after judging or refusing them (processed/, rejected/, state/quarantine)
/// would otherwise grow for as long as it runs, until the disk is full and every store degrades.
/// </summary>
public sealed class RetentionOptions
{
    public TimeSpan Interval { get; set; } = TimeSpan.FromMinutes(10);
    public KeptFolderOptions Processed { get; set; } = new() { MaxAge = TimeSpan.FromDays(30), MaxBytes = 20L << 30 };
    public KeptFolderOptions Rejected { get; set; } = new() { MaxAge = TimeSpan.FromDays(90), MaxBytes = 5L << 30 };
    public KeptFolderOptions Quarantine { get; set; } = new() { MaxAge = TimeSpan.FromDays(90), MaxBytes = 5L << 30 };

    internal void Validate(List<string> f)
    {
        OptionChecks.Positive(f, "Ingest:Retention:Interval", Interval);
        foreach (var (name, o) in new[] { ("Processed", Processed), ("Rejected", Rejected), ("Quarantine", Quarantine) })
        {
            if (o.MaxAge < TimeSpan.Zero) f.Add($"Ingest:Retention:{name}:MaxAge must not be negative (0: no limit), was {o.MaxAge}.");
            OptionChecks.AtLeast(f, $"Ingest:Retention:{name}:MaxBytes", o.MaxBytes, 0);
        }
    }
}
