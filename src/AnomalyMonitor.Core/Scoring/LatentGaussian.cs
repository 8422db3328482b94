using TorchSharp;
using static TorchSharp.torch;

namespace AnomalyMonitor.Core.Scoring;

/// <summary>
/// A Gaussian fitted to the autoencoder's codes of the normal training images (the latent-density half of
/// LSA, CVPR 2019, with a Gaussian for the density). An image's latent score is its squared Mahalanobis
/// distance over the number of dimensions: about 1 for a normal image, whatever the model, and large for
/// a code the normal class does not produce. The covariance is shrunk towards its average variance, by a
/// fixed amount or by <see cref="Shrinkage.Auto"/>, so that a small sample gives a stable inverse.
/// </summary>
public sealed record LatentGaussian(float[] Mean, float[] Precision)
{
    public int Dimensions => Mean.Length;

    /// <summary>Fits <paramref name="count"/> codes of <paramref name="dimensions"/> values each, laid out back to back.</summary>
    public static LatentGaussian Fit(ReadOnlySpan<float> codes, int count, int dimensions, double shrinkage = 0.01)
    {
        if (count < 2) throw new ArgumentException($"A latent density needs at least 2 codes, got {count}.", nameof(count));
        int d = dimensions;
        var mean = new double[d];
        for (int i = 0; i < count; i++)
            for (int j = 0; j < d; j++) mean[j] += codes[(i * d) + j];
        for (int j = 0; j < d; j++) mean[j] /= count;

        var cov = new double[d, d];
        var centred = new double[d];
        for (int i = 0; i < count; i++)
        {
            for (int j = 0; j < d; j++) centred[j] = codes[(i * d) + j] - mean[j];
            for (int a = 0; a < d; a++)
                for (int b = 0; b <= a; b++) cov[a, b] += centred[a] * centred[b];
        }
        double trace = 0;
        for (int a = 0; a < d; a++)
        {
            for (int b = 0; b <= a; b++) cov[b, a] = cov[a, b] = cov[a, b] / (count - 1);
            trace += cov[a, a];
        }
        // A dead unit (a ReLU that never fires) has zero variance: the floor keeps the inverse finite.
        double average = Math.Max(trace / d, 1e-12);
        if (Shrinkage.IsAuto(shrinkage))
        {
            double squares = 0;
            foreach (var v in cov) squares += v * v;
            shrinkage = Shrinkage.Oas(trace, squares, d, count);
        }
        for (int a = 0; a < d; a++)
            for (int b = 0; b < d; b++) cov[a, b] = ((1 - shrinkage) * cov[a, b]) + (a == b ? shrinkage * average : 0);

        var precision = Invert(cov, d);
        return new LatentGaussian([.. mean.Select(v => (float)v)], [.. precision.Cast<double>().Select(v => (float)v)]);
    }

    /// <summary>Squared Mahalanobis distance over the dimensions, one per row of N x d codes.</summary>
    public Tensor Score(Tensor codes, Device device)
    {
        using var mean = torch.tensor(Mean, device: device);
        using var precision = torch.tensor(Precision, [Dimensions, Dimensions], device: device);
        var centred = codes.flatten(1) - mean;
        return (centred.matmul(precision) * centred).sum(1) / Dimensions;
    }

    /// <summary>Inverse of a symmetric positive-definite matrix through its Cholesky factor.</summary>
    private static double[,] Invert(double[,] a, int n)
    {
        var l = new double[n, n];
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j <= i; j++)
            {
                double sum = a[i, j];
                for (int k = 0; k < j; k++) sum -= l[i, k] * l[j, k];
                if (i == j)
                {
                    if (sum <= 0) throw new ArgumentException("The latent covariance is not positive definite.");
                    l[i, i] = Math.Sqrt(sum);
                }
                else
                {
                    l[i, j] = sum / l[j, j];
                }
            }
        }
        // L⁻¹ by forward substitution, then A⁻¹ = L⁻ᵀ L⁻¹.
        var li = new double[n, n];
        for (int i = 0; i < n; i++)
        {
            li[i, i] = 1 / l[i, i];
            for (int j = 0; j < i; j++)
            {
                double sum = 0;
                for (int k = j; k < i; k++) sum -= l[i, k] * li[k, j];
                li[i, j] = sum / l[i, i];
            }
        }
        var inverse = new double[n, n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j <= i; j++)
            {
                double sum = 0;
                for (int k = i; k < n; k++) sum += li[k, i] * li[k, j];
                inverse[i, j] = inverse[j, i] = sum;
            }
        return inverse;
    }
}
