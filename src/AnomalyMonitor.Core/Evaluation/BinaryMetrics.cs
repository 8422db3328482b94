namespace AnomalyMonitor.Core.Evaluation;

/// <summary>Counts with "anomaly" as the positive class.</summary>
public sealed record Confusion(int TruePositive, int FalsePositive, int TrueNegative, int FalseNegative)
{
    public int Total => TruePositive + FalsePositive + TrueNegative + FalseNegative;
}

public sealed record BinaryMetrics(Confusion Confusion, double Accuracy, double Precision, double Recall, double F1, double Auroc, double Aupr)
{
    /// <summary>Computes the verdict metrics and the ranking metrics (AUROC, AUPR) from scores where higher means more anomalous.</summary>
    public static BinaryMetrics Compute(IReadOnlyList<double> scores, IReadOnlyList<bool> isAnomaly, IReadOnlyList<bool> flagged)
    {
        int tp = 0, fp = 0, tn = 0, fn = 0;
        for (int i = 0; i < scores.Count; i++)
        {
            if (flagged[i]) { if (isAnomaly[i]) tp++; else fp++; }
            else { if (isAnomaly[i]) fn++; else tn++; }
        }
        double precision = tp + fp == 0 ? 0 : (double)tp / (tp + fp);
        double recall = tp + fn == 0 ? 0 : (double)tp / (tp + fn);
        double f1 = precision + recall == 0 ? 0 : 2 * precision * recall / (precision + recall);
        double accuracy = scores.Count == 0 ? 0 : (double)(tp + tn) / scores.Count;
        return new BinaryMetrics(new Confusion(tp, fp, tn, fn), accuracy, precision, recall, f1, AreaUnderRoc(scores, isAnomaly), AveragePrecision(scores, isAnomaly));
    }

    /// <summary>Area under the ROC curve as the Mann-Whitney U statistic, with tied scores given their average rank.</summary>
    public static double AreaUnderRoc(IReadOnlyList<double> scores, IReadOnlyList<bool> isAnomaly)
    {
        int n = scores.Count;
        int positives = isAnomaly.Count(a => a), negatives = n - positives;
        if (positives == 0 || negatives == 0) return double.NaN;
        var order = Enumerable.Range(0, n).OrderBy(i => scores[i]).ToArray();
        double rankSum = 0;
        for (int i = 0; i < n;)
        {
            int j = i;
            while (j + 1 < n && scores[order[j + 1]] == scores[order[i]]) j++;
            double rank = ((i + j) / 2.0) + 1;
            for (int k = i; k <= j; k++) if (isAnomaly[order[k]]) rankSum += rank;
            i = j + 1;
        }
        return (rankSum - (positives * (positives + 1) / 2.0)) / ((double)positives * negatives);
    }

    /// <summary>Area under the precision-recall curve as average precision (scikit-learn's definition), ties taken together.</summary>
    public static double AveragePrecision(IReadOnlyList<double> scores, IReadOnlyList<bool> isAnomaly)
    {
        int positives = isAnomaly.Count(a => a);
        if (positives == 0) return double.NaN;
        var order = Enumerable.Range(0, scores.Count).OrderByDescending(i => scores[i]).ToArray();
        double ap = 0, lastRecall = 0;
        int tp = 0, seen = 0;
        for (int i = 0; i < order.Length;)
        {
            int j = i;
            while (j + 1 < order.Length && scores[order[j + 1]] == scores[order[i]]) j++;
            for (int k = i; k <= j; k++) { seen++; if (isAnomaly[order[k]]) tp++; }
            double recall = (double)tp / positives, precision = (double)tp / seen;
            ap += (recall - lastRecall) * precision;
            lastRecall = recall;
            i = j + 1;
        }
        return ap;
    }
}
