using AnomalyMonitor.Configuration;
using Microsoft.Extensions.Options;

namespace AnomalyMonitor.State;

public sealed class ServiceOptions
{
    public const string Section = "Service";
    /// <summary>Where state lives (judge window, outbox). Relative paths in other sections resolve against it under systemd.</summary>
    public string StateDirectory { get; set; } = "state";
    public TimeSpan ShutdownTimeout { get; set; } = TimeSpan.FromSeconds(20);
    /// <summary>fsync every commit of the outbox and the sample store (SQLite synchronous=FULL), so that an acknowledged item's record survives a power loss, not only a crash.</summary>
    public bool SyncEveryCommit { get; set; }
}

internal sealed class ServiceOptionsValidator : IValidateOptions<ServiceOptions>
{
    public ValidateOptionsResult Validate(string? name, ServiceOptions o)
    {
        var f = new List<string>();
        if (string.IsNullOrWhiteSpace(o.StateDirectory)) f.Add("Service:StateDirectory must be set.");
        OptionChecks.Positive(f, "Service:ShutdownTimeout", o.ShutdownTimeout);
        return OptionChecks.Result(f);
    }
}
