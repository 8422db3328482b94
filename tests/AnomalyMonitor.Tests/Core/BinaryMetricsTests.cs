using AnomalyMonitor.Core.Evaluation;

namespace AnomalyMonitor.Tests.Core;

public class BinaryMetricsTests
{
    // Reference AUROC: the probability that a random anomaly outscores a random normal, ties counting half.
    private static double PairwiseAuroc(double[] s, bool[] a)
    {
        double wins = 0; int pairs = 0;
        for (int i = 0; i < s.Length; i++)
            for (int j = 0; j < s.Length; j++)
                if (a[i] && !a[j]) { pairs++; wins += s[i] > s[j] ? 1 : s[i] == s[j] ? 0.5 : 0; }
        return wins / pairs;
    }

    // Reference average precision: mean of precision at each positive's rank (no ties in this data).
    private static double ReferenceAp(double[] s, bool[] a)
    {
        var order = Enumerable.Range(0, s.Length).OrderByDescending(i => s[i]).ToArray();
        double sum = 0; int tp = 0;
        for (int k = 0; k < order.Length; k++)
            if (a[order[k]]) { tp++; sum += (double)tp / (k + 1); }
        return sum / a.Count(x => x);
    }

    [Fact]
    public void Auroc_and_aupr_match_their_definitions_on_random_data()
    {
        var rng = new Random(11);
        var anomaly = Enumerable.Range(0, 300).Select(_ => rng.NextDouble() < 0.3).ToArray();
        var scores = anomaly.Select(a => rng.NextDouble() + (a ? 0.4 : 0)).ToArray();
        var m = BinaryMetrics.Compute(scores, anomaly, scores.Select(s => s > 0.8).ToArray());
        Assert.Equal(PairwiseAuroc(scores, anomaly), m.Auroc, 10);
        Assert.Equal(ReferenceAp(scores, anomaly), m.Aupr, 10);
    }

    [Fact]
    public void Ties_count_half_in_auroc()
    {
        double[] s = [1, 1, 1, 1];
        bool[] a = [true, false, true, false];
        Assert.Equal(0.5, BinaryMetrics.AreaUnderRoc(s, a), 12);
    }

    [Fact]
    public void Confusion_and_rates_follow_the_counts()
    {
        double[] s = [0.9, 0.8, 0.7, 0.2, 0.1, 0.6];
        bool[] truth = [true, true, false, false, false, true];
        bool[] flagged = [true, true, true, false, false, false];
        var m = BinaryMetrics.Compute(s, truth, flagged);
        Assert.Equal(new Confusion(2, 1, 2, 1), m.Confusion);
        Assert.Equal(4.0 / 6, m.Accuracy, 12);
        Assert.Equal(2.0 / 3, m.Precision, 12);
        Assert.Equal(2.0 / 3, m.Recall, 12);
        Assert.Equal(2.0 / 3, m.F1, 12);
    }
}
