using AnomalyMonitor.Core.Data;
using AnomalyMonitor.Core.Models;
using AnomalyMonitor.Core.Scoring;
using AnomalyMonitor.Core.Thresholds;
using AnomalyMonitor.Core.Training;
using static TorchSharp.torch;

namespace AnomalyMonitor.Benchmarks;

/// <summary>
/// Scoring-only experiments on a model the select benchmark trained (docs/benchmarks.md, section 2b):
/// --set views=views:rot=10,shift=1;... (test-time views), knn=1,5 (nearest training codes, plain and
/// whitened, and whitened plus latent), refit=0.001,0.1 (the Gaussian fitted again, also on moved images),
/// far=1 (the k = 3 rule's false alarms on the calibration and on unseen validation normals), gmm=2,3,5
/// (a Gaussian mixture of K components on the training codes instead of one Gaussian), gmmshrink=0.01,auto
/// (the trainer's latent density fitted again with other covariance shrinkages, OAS's "auto" included),
/// densityseeds=1,2,3 and bag=3 (the density on the training codes alone and on training plus held-out codes, per
/// k-means seed, and several seeds' fits pooled).
/// </summary>
internal static class SelectExperiments
{
    private static readonly System.Globalization.CultureInfo Inv = System.Globalization.CultureInfo.InvariantCulture;

    /// <summary>Adds the experiments' scores that the settings ask for to one model's scores.</summary>
    internal static void Run(Dictionary<string, (double[] N, double[] A)> scores, TrainingResult result, ImageSet fit, ImageSet valNormal, ImageSet valAnomalies,
        Func<string, string, string> get, Augmentation augmentation)
    {
        var viewSets = get("views", "").Split(';', StringSplitOptions.RemoveEmptyEntries).Select(ScoreViews.Parse).ToList();
        var shrinkages = get("refit", "").Split(',', StringSplitOptions.RemoveEmptyEntries).Select(Shrinkage.Parse).ToArray();
        var densitySeeds = get("densityseeds", "").Split(',', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).ToArray();
        var mixtureShrinkages = get("gmmshrink", "").Split(',', StringSplitOptions.RemoveEmptyEntries).Select(Shrinkage.Parse).ToArray();
        var neighbours = get("knn", "").Split(',', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).ToArray();
        var mixtures = get("gmm", "").Split(',', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).ToArray();
        if (mixtures.Length > 0)
        {
            using var bank = Codes(result, fit);
            using var n = Codes(result, valNormal);
            using var a = Codes(result, valAnomalies);
            foreach (var k in mixtures)
            {
                var mixture = LatentMixture.Fit(bank, k);
                scores[$"gmm{k}"] = (LogScores(c => mixture.Score(c, CPU), n), LogScores(c => mixture.Score(c, CPU), a));
                // A choice of K from normal data alone: the held-out normals' mean log-likelihood (less d/2·log 2π),
                // recovered from the score, which is (2·bound − 2·log-likelihood) / d.
                double bound = Enumerable.Range(0, k).Max(c => Math.Log(mixture.Weights[c]) - (0.5 * mixture.LogDeterminants[c])) + Math.Log(k);
                double meanScore;
                using (var s = NewDisposeScope()) meanScore = mixture.Score(n, CPU).mean().item<float>();
                Console.WriteLine($"  gmm{k}: held-out normals' mean log-likelihood {bound - (mixture.Dimensions / 2.0 * meanScore):0.00}");
            }
        }
        if (densitySeeds.Length > 0) DensitySeeds(scores, result, fit, valNormal, valAnomalies, int.Parse(get("components", "1"), Inv), densitySeeds, int.Parse(get("bag", "0"), Inv));
        if (mixtureShrinkages.Length > 0) MixtureShrinkages(scores, result, fit, valNormal, valAnomalies, int.Parse(get("components", "1"), Inv), mixtureShrinkages);
        foreach (var views in viewSets)
        {
            var (n, a) = (ViewScores(result, valNormal, views), ViewScores(result, valAnomalies, views));
            scores[$"{views}/mean"] = (n.Mean, a.Mean);
            scores[$"{views}/logmean"] = (n.LogMean, a.LogMean);
        }
        if (neighbours.Length > 0)
        {
            foreach (var (name, n, a) in Neighbours(result, fit, valNormal, valAnomalies, neighbours)) scores[name] = (n, a);
            // Sums of standardised parts (standardised on the validation normals: selection only).
            foreach (var k in neighbours) scores[$"latent+wknn{k}"] = Sum(scores["latent"], scores[$"wknn{k}"]);
        }
        if (get("far", "") == "1") FalseAlarms(result, fit, valNormal, valAnomalies);
        foreach (var shrink in shrinkages)
            foreach (var augmented in new[] { false, true })
            {
                var refit = Refit(result, fit, shrink, augmented ? augmentation : Augmentation.None);
                scores[$"refit{Shrinkage.Name(shrink)}{(augmented ? "aug" : "")}"] = (refit.Score(valNormal), refit.Score(valAnomalies));
            }
    }

    /// <summary>
    /// The trainer's latent density (as many components as the sample carries) fitted again with each shrinkage,
    /// "auto" included; prints the single Gaussian's OAS ρ of the training codes for reference.
    /// </summary>
    internal static void MixtureShrinkages(Dictionary<string, (double[] N, double[] A)> scores, TrainingResult result, ImageSet fit, ImageSet valNormal, ImageSet valAnomalies,
        int requested, double[] shrinkages)
    {
        var train = result.TrainIndices;
        using var bank = Codes(result, fit.Subset(train));
        using var n = Codes(result, valNormal);
        using var a = Codes(result, valAnomalies);
        int d = (int)bank.shape[1], k = Trainer.Components(requested, train.Length, d);
        using (var s = NewDisposeScope())
            Console.WriteLine($"  {train.Length} training codes, d {d}, K {k}; one Gaussian's OAS ρ {Shrinkage.Oas(bank.to(float64).T.cov(), train.Length):0.000}");
        foreach (var shrink in shrinkages)
        {
            Func<Tensor, Tensor> density;
            if (k > 1)
            {
                var mixture = LatentMixture.Fit(bank, k, shrink, seed: 1);
                density = c => mixture.Score(c, CPU);
            }
            else
            {
                var gaussian = LatentGaussian.Fit(bank.data<float>().ToArray(), train.Length, d, shrink);
                density = c => gaussian.Score(c, CPU);
            }
            scores[$"k{k}@{Shrinkage.Name(shrink)}"] = (LogScores(density, n), LogScores(density, a));
        }
    }

    /// <summary>
    /// The latent density fitted to the training codes alone ("train", as the trainer does) and to the training and
    /// held-out codes ("all"), once per k-means seed: the seeds show how far one fit's luck moves the AUROC. With bag=M,
    /// also each run of M consecutive seeds' fits pooled into one mixture of M·K components, each weight divided by M
    /// ("train-bag1-3": seeds 1 to 3), which averages the fits' densities.
    /// </summary>
    internal static void DensitySeeds(Dictionary<string, (double[] N, double[] A)> scores, TrainingResult result, ImageSet fit, ImageSet valNormal, ImageSet valAnomalies,
        int requested, int[] seeds, int bag)
    {
        using var n = Codes(result, valNormal);
        using var a = Codes(result, valAnomalies);
        foreach (var (name, indices) in new[] { ("train", result.TrainIndices), ("all", Enumerable.Range(0, fit.Count).ToArray()) })
        {
            using var bank = Codes(result, fit.Subset(indices));
            int d = (int)bank.shape[1], k = Trainer.Components(requested, indices.Length, d);
            var fits = new List<LatentMixture>();
            foreach (var seed in seeds)
            {
                var mixture = LatentMixture.Fit(bank, k, seed: seed);
                fits.Add(mixture);
                scores[$"{name}#{seed}"] = (LogScores(c => mixture.Score(c, CPU), n), LogScores(c => mixture.Score(c, CPU), a));
            }
            for (int b = 0; bag > 1 && b + bag <= fits.Count; b += bag)
            {
                var pooled = LatentMixture.Pool(fits.GetRange(b, bag));
                scores[$"{name}-bag{seeds[b]}-{seeds[b + bag - 1]}"] = (LogScores(c => pooled.Score(c, CPU), n), LogScores(c => pooled.Score(c, CPU), a));
            }
        }
    }

    /// <summary>The log of a density's score of each code, as the AUROC reads scores.</summary>
    private static double[] LogScores(Func<Tensor, Tensor> score, Tensor codes)
    {
        using var s = NewDisposeScope();
        return [.. score(codes).data<float>().ToArray().Select(v => Statistics.SafeLog(v))];
    }

    /// <summary>The latent score over test-time views: the mean of the views' scores, and the mean of their logs.</summary>
    internal static (double[] Mean, double[] LogMean) ViewScores(TrainingResult result, ImageSet images, ScoreViews views)
    {
        var autoencoder = (IAutoencoder)result.Model;
        var latent = result.Detector.Latent!;
        result.Model.eval();
        var mean = new List<double>();
        var logMean = new List<double>();
        using var noGrad = no_grad();
        for (int b = 0; b < images.Count; b += 128)
        {
            using var scope = NewDisposeScope();
            int n = Math.Min(128, images.Count - b);
            var x = tensor(images.Pixels.AsSpan(b * images.Shape.PixelCount, n * images.Shape.PixelCount).ToArray(), [n, images.Shape.Channels, images.Shape.Height, images.Shape.Width]);
            var perView = latent.Score(autoencoder.Encode(views.Apply(x)), CPU);
            mean.AddRange(views.Mean(perView, n).data<float>().ToArray().Select(v => Statistics.SafeLog(v)));
            logMean.AddRange(views.Mean(perView.clamp_min(1e-12).log(), n).data<float>().ToArray().Select(v => (double)v));
        }
        return ([.. mean], [.. logMean]);
    }

    /// <summary>N x d codes of the images, each batch moved first when an augmentation is given.</summary>
    internal static Tensor Codes(TrainingResult result, ImageSet images, Augmentation? augmentation = null, Random? rng = null)
    {
        var autoencoder = (IAutoencoder)result.Model;
        result.Model.eval();
        var parts = new List<Tensor>();
        using var noGrad = no_grad();
        for (int b = 0; b < images.Count; b += 256)
        {
            using var scope = NewDisposeScope();
            int n = Math.Min(256, images.Count - b);
            var x = tensor(images.Pixels.AsSpan(b * images.Shape.PixelCount, n * images.Shape.PixelCount).ToArray(), [n, images.Shape.Channels, images.Shape.Height, images.Shape.Width]);
            if (augmentation is not null) x = augmentation.Apply(x, rng!);
            parts.Add(autoencoder.Encode(x).flatten(1).detach().MoveToOuterDisposeScope());
        }
        var all = cat(parts, 0);
        foreach (var p in parts) p.Dispose();
        return all;
    }

    /// <summary>Mean distance to the k nearest training codes: plain, and after whitening with the fitted Gaussian.</summary>
    internal static IEnumerable<(string, double[], double[])> Neighbours(TrainingResult result, ImageSet fit, ImageSet normals, ImageSet anomalies, int[] ks)
    {
        using var scope = NewDisposeScope();
        var bank = Codes(result, fit);
        var n = Codes(result, normals);
        var a = Codes(result, anomalies);
        var latent = result.Detector.Latent!;
        var precision = tensor(latent.Precision, [latent.Dimensions, latent.Dimensions]).to(float64);
        var whiten = linalg.cholesky(precision).to(float32); // P = L Lᵀ: |Lᵀ(x - y)|² is the Mahalanobis distance
        foreach (var (space, tb, tn, ta) in new[] { ("knn", bank, n, a), ("wknn", bank.matmul(whiten), n.matmul(whiten), a.matmul(whiten)) })
        {
            var dn = cdist(tn, tb);
            var da = cdist(ta, tb);
            foreach (var k in ks)
            {
                double[] Score(Tensor d) => [.. d.topk(k, 1, largest: false).values.mean([1]).data<float>().ToArray().Select(v => Statistics.SafeLog(v))];
                yield return ($"{space}{k}", Score(dn), Score(da));
            }
        }
    }

    /// <summary>The latent Gaussian fitted again: another shrinkage, and on the codes of moved training images.</summary>
    internal static (LatentGaussian Gaussian, Func<ImageSet, double[]> Score) Refit(TrainingResult result, ImageSet fit, double shrinkage, Augmentation augmentation)
    {
        using var all = Codes(result, fit, augmentation, new Random(7));
        int d = (int)all.shape[1];
        var codes = all.data<float>().ToArray();
        var g = LatentGaussian.Fit(codes, codes.Length / d, d, shrinkage);
        return (g, images =>
        {
            var c = Codes(result, images);
            using var s = g.Score(c, CPU);
            var values = s.data<float>().ToArray();
            c.Dispose();
            return [.. values.Select(v => Statistics.SafeLog(v))];
        });
    }

    /// <summary>
    /// The k = 3 rule's false alarms on the validation normals (unseen, exchangeable with the calibration) in log
    /// space and in a Box-Cox space fitted to the calibration; the calibration is the trainer's own held-out images.
    /// </summary>
    internal static void FalseAlarms(TrainingResult result, ImageSet fit, ImageSet normals, ImageSet anomalies)
    {
        var latent = result.Detector with { Score = ScoreKind.Latent };
        var scorer = new Scorer(result.Model, CPU, fit.Shape, ErrorMetric.Mse, latent);
        var cal = scorer.Score(fit.Subset(result.ValidationIndices), batchSize: 256).Select(v => (double)v).ToArray();
        var n = scorer.Score(normals, batchSize: 256).Select(v => (double)v).ToArray();
        var a = scorer.Score(anomalies, batchSize: 256).Select(v => (double)v).ToArray();
        double lambda = BoxCoxLambda(cal);
        foreach (var (name, f, upper) in new (string, Func<double, double>, bool)[] { ("log", Math.Log, false), ("log, upper σ", Math.Log, true), ($"boxcox{lambda:0.00}", x => BoxCox(x, lambda), false) })
        {
            var (m, sd) = Statistics.MeanStd(cal.Select(f).ToArray());
            // The upper semi-deviation: σ of the side the rule guards (equal to σ for a Gaussian).
            if (upper) sd = Math.Sqrt(cal.Select(f).Where(v => v > m).Average(v => (v - m) * (v - m)));
            double cut = m + (3 * sd);
            double calFar = cal.Count(x => f(x) > cut) * 100.0 / cal.Length;
            double far = n.Count(x => f(x) > cut) * 100.0 / n.Length;
            double recall = a.Count(x => f(x) > cut) * 100.0 / a.Length;
            var tr = cal.Select(f).ToArray();
            double skew = tr.Average(x => Math.Pow((x - m) / sd, 3));
            Console.Write($"  [{name}: skew {skew:0.00}, FA cal {calFar:0.00}% ({cal.Length}) val {far:0.00}% ({n.Length}), recall {recall:0.0}%]");
        }
    }

    internal static double BoxCox(double x, double lambda) => Math.Abs(lambda) < 1e-9 ? Math.Log(x) : (Math.Pow(x, lambda) - 1) / lambda;

    /// <summary>The λ of largest profile likelihood on a grid from -2 to 2.</summary>
    internal static double BoxCoxLambda(double[] x)
    {
        double sumLog = x.Sum(v => Math.Log(v));
        double best = 0, bestLl = double.NegativeInfinity;
        for (double l = -2; l <= 2.0001; l += 0.02)
        {
            var (_, sd) = Statistics.MeanStd(x.Select(v => BoxCox(v, l)).ToArray());
            double ll = (-x.Length / 2.0 * Math.Log(sd * sd)) + ((l - 1) * sumLog);
            if (ll > bestLl) (best, bestLl) = (l, ll);
        }
        return best;
    }

    internal static (double[] N, double[] A) Sum((double[] N, double[] A) x, (double[] N, double[] A) y)
    {
        var (mx, sx) = Statistics.MeanStd(x.N);
        var (my, sy) = Statistics.MeanStd(y.N);
        double[] S(double[] a, double[] b) => [.. a.Select((v, i) => ((v - mx) / sx) + ((b[i] - my) / sy))];
        return (S(x.N, y.N), S(x.A, y.A));
    }
}
