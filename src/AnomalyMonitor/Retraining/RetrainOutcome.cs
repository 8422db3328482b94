using AnomalyMonitor.Core.Evaluation;

namespace AnomalyMonitor.Retraining;

/// <summary>One retraining run as reported by the API, the CLI and the web page.</summary>
public sealed record RetrainOutcome(
    string Result, string Reason, DateTimeOffset At, double Seconds, int Samples,
    int? Version = null, int? ParentVersion = null, double? BestLoss = null, GateReport? Gate = null)
{
    public const string Promoted = "promoted";
    public const string Rejected = "rejected";
    public const string Failed = "failed";
    public const string Skipped = "skipped";
    public const string Cancelled = "cancelled";
}
