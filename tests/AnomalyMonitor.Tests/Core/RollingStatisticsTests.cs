using AnomalyMonitor.Core.Thresholds;

namespace AnomalyMonitor.Tests.Core;

public class RollingStatisticsTests
{
    private static (double Mean, double Std) Exact(IEnumerable<double> window)
    {
        var v = window.ToArray();
        double m = v.Average();
        return (m, Math.Sqrt(v.Select(x => (x - m) * (x - m)).Average()));
    }

    [Fact]
    public void Tracks_the_last_N_values_exactly()
    {
        var rolling = new RollingStatistics(50);
        var rng = new Random(3);
        var all = new List<double>();
        for (int i = 0; i < 1234; i++)
        {
            double x = rng.NextDouble() * 10;
            all.Add(x);
            rolling.Add(x);
            if (i % 97 == 0 || i == 1233)
            {
                var (mean, std) = Exact(all.TakeLast(50));
                Assert.Equal(mean, rolling.Mean, 9);
                Assert.Equal(std, rolling.Std, 9);
                Assert.Equal(Math.Min(all.Count, 50), rolling.Count);
            }
        }
    }

    [Fact]
    public void Stays_accurate_over_millions_of_updates_with_a_large_offset()
    {
        // A large mean with a tiny spread is where naive sum-of-squares loses every digit.
        var rolling = new RollingStatistics(1000);
        var rng = new Random(5);
        var last = new Queue<double>();
        for (int i = 0; i < 3_000_000; i++)
        {
            double x = 1e6 + rng.NextDouble() * 1e-3;
            rolling.Add(x);
            last.Enqueue(x);
            if (last.Count > 1000) last.Dequeue();
        }
        var (mean, std) = Exact(last);
        Assert.Equal(mean, rolling.Mean, 6);
        Assert.InRange(Math.Abs(rolling.Std - std) / std, 0, 1e-6);
    }

    [Fact]
    public void Save_and_restore_give_the_same_window()
    {
        var rolling = new RollingStatistics(10);
        for (int i = 0; i < 25; i++) rolling.Add(i * 1.5);
        var state = rolling.Save();
        Assert.Equal(Enumerable.Range(15, 10).Select(i => i * 1.5), state.Values);

        var restored = new RollingStatistics(10);
        restored.Restore(state);
        Assert.Equal(rolling.Mean, restored.Mean, 12);
        Assert.Equal(rolling.Std, restored.Std, 12);
        rolling.Add(100);
        restored.Add(100);
        Assert.Equal(rolling.Mean, restored.Mean, 12);

        var smaller = new RollingStatistics(4);
        smaller.Restore(state);
        Assert.Equal(Exact(state.Values.TakeLast(4)).Mean, smaller.Mean, 12);
    }

    [Fact]
    public void Non_finite_scores_are_ignored()
    {
        var rolling = new RollingStatistics(5);
        rolling.Add(1);
        rolling.Add(double.NaN);
        rolling.Add(double.PositiveInfinity);
        rolling.Add(3);
        Assert.Equal(2, rolling.Count);
        Assert.Equal(2, rolling.Mean, 12);
    }
}
