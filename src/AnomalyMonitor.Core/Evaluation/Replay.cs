using AnomalyMonitor.Core.Thresholds;

namespace AnomalyMonitor.Core.Evaluation;

/// <summary>What the service's rolling judge made of a set of scores, taken in their order.</summary>
public sealed record ReplayReport(int Flagged, int Total, int NormalsFlagged, int Normals, int AnomaliesFlagged, int Anomalies, double FinalThreshold, int WindowCount)
{
    public double FalseAlarmRate => Normals == 0 ? double.NaN : (double)NormalsFlagged / Normals;
    public double Recall => Anomalies == 0 ? double.NaN : (double)AnomaliesFlagged / Anomalies;
}

public static class Replay
{
    /// <summary>
    /// Judges <paramref name="report"/>'s scores one after another with a fresh <see cref="RollingJudge"/>, as the
    /// service would if the images arrived in this order: its window learns from what it accepts, so the verdicts
    /// depend on the order, where <see cref="Evaluator"/>'s fixed calibration does not.
    /// </summary>
    public static ReplayReport Run(EvaluationReport report, CalibrationStats calibration, JudgeSettings settings)
    {
        var judge = new RollingJudge(settings with { Rule = settings.Rule ?? report.Policy }, calibration);
        int flagged = 0, normals = 0, normalsFlagged = 0, anomalies = 0, anomaliesFlagged = 0;
        for (int i = 0; i < report.Errors.Length; i++)
        {
            bool alarm = judge.Judge(report.Errors[i]).IsAnomaly;
            if (alarm) flagged++;
            if (report.IsAnomaly is not { } truth) continue;
            if (truth[i]) { anomalies++; if (alarm) anomaliesFlagged++; }
            else { normals++; if (alarm) normalsFlagged++; }
        }
        return new ReplayReport(flagged, report.Errors.Length, normalsFlagged, normals, anomaliesFlagged, anomalies, judge.Threshold, judge.WindowCount);
    }
}
