using AnomalyMonitor.Configuration;
using Microsoft.Extensions.Options;

namespace AnomalyMonitor.Retraining;

public sealed class RetrainOptions
{
    public const string Section = "Retrain";
    public bool Enabled { get; set; } = true;
    /// <summary>Quartz cron expression (seconds first): every 6 hours by default.</summary>
    public string Schedule { get; set; } = "0 0 0/6 * * ?";
    /// <summary>A scheduled run trains only when at least this many samples arrived since the last run.</summary>
    public int MinNewSamples { get; set; } = 500;
    /// <summary>No run trains on fewer samples than this (on-demand runs included).</summary>
    public int MinSamples { get; set; } = 200;
    /// <summary>Train only on samples older than this, so an unnoticed incident has time to be flagged and excluded.</summary>
    public TimeSpan QuarantineAge { get; set; } = TimeSpan.Zero;
    /// <summary>Fraction of the store held out (the same samples every run) to compare candidate and current model.</summary>
    public double Holdout { get; set; } = 0.1;
    /// <summary>Promote only if the candidate's mean held-out error is at most (1 + Tolerance) times the current model's.</summary>
    public double Tolerance { get; set; } = 0.05;
    /// <summary>...and, with enough confirmed anomalies, its AUROC is at most this much below the current model's.</summary>
    public double AurocTolerance { get; set; } = 0.01;
    public int MinConfirmedAnomalies { get; set; } = 5;
    /// <summary>Torch threads for training, so that scoring keeps the rest of the cores.</summary>
    public int Threads { get; set; } = 1;
    public int Epochs { get; set; } = 20;
    /// <summary>Optimizer steps a run may take at least, whatever the number of samples; early stopping still ends a converged run.</summary>
    public int MinSteps { get; set; } = 3000;
    /// <summary>Epochs without a better validation loss before stopping early; 0 trains all Epochs.</summary>
    public int Patience { get; set; } = 5;
    public int BatchSize { get; set; } = 128;
    public int? Seed { get; set; }
}

internal sealed class RetrainOptionsValidator : IValidateOptions<RetrainOptions>
{
    public ValidateOptionsResult Validate(string? name, RetrainOptions o)
    {
        var f = new List<string>();
        if (o.Enabled && !Quartz.CronExpression.TryParse(o.Schedule ?? "", out _))
            f.Add($"Retrain:Schedule '{o.Schedule}' is not a valid Quartz cron expression (seconds first, e.g. \"0 0 0/6 * * ?\").");
        OptionChecks.AtLeast(f, "Retrain:MinNewSamples", o.MinNewSamples, 0);
        OptionChecks.AtLeast(f, "Retrain:MinSamples", o.MinSamples, 10);
        if (o.QuarantineAge < TimeSpan.Zero) f.Add($"Retrain:QuarantineAge must not be negative, was {o.QuarantineAge}.");
        if (o.Holdout is <= 0 or >= 0.5) f.Add($"Retrain:Holdout must be in (0, 0.5), was {o.Holdout}.");
        OptionChecks.AtLeast(f, "Retrain:Tolerance", o.Tolerance, 0);
        OptionChecks.AtLeast(f, "Retrain:AurocTolerance", o.AurocTolerance, 0);
        OptionChecks.AtLeast(f, "Retrain:MinConfirmedAnomalies", o.MinConfirmedAnomalies, 1);
        OptionChecks.AtLeast(f, "Retrain:Threads", o.Threads, 1);
        OptionChecks.AtLeast(f, "Retrain:Epochs", o.Epochs, 1);
        OptionChecks.AtLeast(f, "Retrain:MinSteps", o.MinSteps, 0);
        OptionChecks.AtLeast(f, "Retrain:Patience", o.Patience, 0);
        OptionChecks.AtLeast(f, "Retrain:BatchSize", o.BatchSize, 1);
        return OptionChecks.Result(f);
    }
}
