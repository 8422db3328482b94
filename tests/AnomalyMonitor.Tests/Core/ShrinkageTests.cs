using AnomalyMonitor.Core.Runtime;
using AnomalyMonitor.Core.Scoring;
using AnomalyMonitor.Tests.Support;
using static TorchSharp.torch;

namespace AnomalyMonitor.Tests.Core;

/// <summary>OAS shrinkage: large for few codes a dimension, small for many, and a steadier latent score than a fixed ρ on a small sample.</summary>
[Collection(TorchCollection.Name)]
public sealed class ShrinkageTests
{
    public ShrinkageTests() => TorchRuntime.EnsureLoaded();

    private static float[] Codes(int n, int d, int seed) => Synthetic.Codes(n, d, seed);

    private static double OasOf(float[] codes, int n, int d)
    {
        using var scope = NewDisposeScope();
        return Shrinkage.Oas(tensor(codes, [n, d]).to(float64).T.cov(), n);
    }

    [Fact]
    public void Oas_shrinks_hard_for_few_codes_a_dimension_and_little_for_many()
    {
        const int d = 64;
        double few = OasOf(Codes(150, d, seed: 1), 150, d), many = OasOf(Codes(20_000, d, seed: 2), 20_000, d);
        Assert.True(few > 10 * many, $"ρ from 150 codes {few}, from 20,000 {many}");
        Assert.InRange(many, 0, 0.02);
        // A covariance that is already a multiple of I: nothing to learn beyond its scale.
        Assert.Equal(1, Shrinkage.Oas(traceS: d * 2.0, traceS2: d * 4.0, d, 150));
    }

    [Fact]
    public void Auto_shrinkage_keeps_unseen_normals_near_one_where_a_fixed_small_one_inflates_them()
    {
        // 150 codes of 64 dimensions, a cold start's mixture component: the sample covariance's bottom eigenvalues are
        // far too small, so a nearly unshrunk inverse scores unseen normal codes well above the ~1 of the training ones.
        const int d = 64, n = 150;
        var train = Codes(n, d, seed: 3);
        var unseen = Codes(2_000, d, seed: 4);
        double Mean(LatentGaussian g)
        {
            using var scope = NewDisposeScope();
            return g.Score(tensor(unseen, [2_000, d]), CPU).mean().item<float>();
        }
        double fixedSmall = Mean(LatentGaussian.Fit(train, n, d, 0.01)), auto = Mean(LatentGaussian.Fit(train, n, d, Shrinkage.Auto));
        Assert.True(fixedSmall > 1.3, $"fixed 0.01: unseen normals' mean score {fixedSmall}");
        Assert.True(Math.Abs(auto - 1) < Math.Abs(fixedSmall - 1) / 2, $"auto {auto} against fixed 0.01 {fixedSmall}");
    }

    [Theory]
    [InlineData("auto", double.NaN)]
    [InlineData("0.01", 0.01)]
    [InlineData(" AUTO ", double.NaN)]
    public void Parses_auto_or_a_fraction(string text, double expected) => Assert.Equal(expected, Shrinkage.Parse(text));

    [Theory]
    [InlineData("1.5")]
    [InlineData("-0.1")]
    [InlineData("oas")]
    public void Rejects_anything_else_with_a_reason(string text) =>
        Assert.Contains("not auto or a number from 0 to 1", Assert.Throws<FormatException>(() => Shrinkage.Parse(text)).Message);
}
