using System.Diagnostics;
using System.Globalization;
using AnomalyMonitor.Core.Data;
using AnomalyMonitor.Core.Evaluation;
using AnomalyMonitor.Core.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace AnomalyMonitor.Benchmarks;

/// <summary>Scratch exploration on the validation protocol only (training split); never the test split.</summary>
internal static class Explore
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static int Run(string dataDir, string classesText, string[] settings)
    {
        var cfg = settings.Select(s => s.Split('=', 2)).ToDictionary(p => p[0], p => p.Length > 1 ? p[1] : "");
        string Get(string k, string d) => cfg.TryGetValue(k, out var v) ? v : d;
        int epochs = int.Parse(Get("epochs", "20"), Inv);
        int latent = int.Parse(Get("latent", "16"), Inv);
        double rot = double.Parse(Get("rot", "0"), Inv);
        double shift = double.Parse(Get("shift", "0"), Inv);
        double p = double.Parse(Get("p", "1"), Inv);
        string loss = Get("loss", "bce");
        string arch = Get("arch", "conv");
        int batch = int.Parse(Get("batch", "128"), Inv);
        double lr = double.Parse(Get("lr", "0.001"), Inv);
        int seed = int.Parse(Get("seed", "1"), Inv);
        int threads = int.Parse(Get("threads", "2"), Inv);
        bool rot90 = Get("rot90", "0") == "1";
        torch.set_num_threads(threads);

        var train = DatasetLoader.Load(dataDir, new DatasetOptions { Split = DatasetSplit.Train }).Images;
        Console.WriteLine($"# explore {dataDir} {string.Join(' ', settings)}");
        var all = new Dictionary<string, List<double>>();
        foreach (var c in classesText.Split(',').Select(int.Parse))
        {
            var rng = new Random(1000 + c);
            var normalIdx = Enumerable.Range(0, train.Count).Where(i => train.Labels[i] == c).ToArray();
            rng.Shuffle(normalIdx);
            int nVal = normalIdx.Length / 10;
            var valNormal = train.Subset(normalIdx[..nVal]);
            var fit = train.Subset(normalIdx[nVal..]);
            var otherIdx = Enumerable.Range(0, train.Count).Where(i => train.Labels[i] != c).ToArray();
            rng.Shuffle(otherIdx);
            var valAnom = train.Subset(otherIdx[..2000]);

            torch.random.manual_seed(seed);
            var trng = new Random(seed);
            using var model = Make(arch, latent);
            var clock = Stopwatch.StartNew();
            Train(model, fit, epochs, batch, lr, loss, rot, shift, p, trng, rot90);
            double seconds = clock.Elapsed.TotalSeconds;
            model.eval();

            var scores = new Dictionary<string, (double[] N, double[] A)>();
            var fitCodes = Codes(model, fit);
            var nCodes = Codes(model, valNormal);
            var aCodes = Codes(model, valAnom);
            var transforms = new List<(double Rot, double Dx, double Dy)> { (0, 0, 0) };
            if (rot > 0) { transforms.Add((rot / 2, 0, 0)); transforms.Add((-rot / 2, 0, 0)); }
            if (shift > 0) { transforms.Add((0, shift / 2, 0)); transforms.Add((0, -shift / 2, 0)); transforms.Add((0, 0, shift / 2)); transforms.Add((0, 0, -shift / 2)); }
            var idN = Recon(model, valNormal, [(0, 0, 0)]);
            var idA = Recon(model, valAnom, [(0, 0, 0)]);
            scores["recon"] = (idN, idA);
            if (rot90) { transforms.Add((90, 0, 0)); transforms.Add((180, 0, 0)); transforms.Add((270, 0, 0)); }
            if (transforms.Count > 1) scores[$"reconT{transforms.Count}"] = (Recon(model, valNormal, transforms), Recon(model, valAnom, transforms));
            var gauss = Gaussian.Fit(fitCodes, latent);
            scores["maha"] = (nCodes.Select(x => gauss.Distance(x)).ToArray(), aCodes.Select(x => gauss.Distance(x)).ToArray());
            foreach (int k in new[] { 1, 5, 20 }) scores[$"knn{k}"] = (Knn(fitCodes, nCodes, k), Knn(fitCodes, aCodes, k));
            // Normalise each component by the fit set's own statistics (log space; kNN leaving each point out), then sum.
            var probe = Enumerable.Range(0, Math.Min(1000, fit.Count)).ToList();
            var fitRecon = Recon(model, fit.Subset(probe), [(0, 0, 0)]);
            var fitMaha = probe.Select(i => gauss.Distance(fitCodes[i])).ToArray();
            var fitKnn = Knn(fitCodes, probe.Select(i => fitCodes[i]).ToArray(), 5, leaveOut: true);
            var nMaha = nCodes.Select(x => gauss.Distance(x)).ToArray();
            var aMaha = aCodes.Select(x => gauss.Distance(x)).ToArray();
            scores["recon+maha"] = (Combine(idN, nMaha, fitRecon, fitMaha), Combine(idA, aMaha, fitRecon, fitMaha));
            scores["recon+knn5"] = (Combine(idN, scores["knn5"].N, fitRecon, fitKnn), Combine(idA, scores["knn5"].A, fitRecon, fitKnn));
            scores["maha+knn5"] = (Combine(nMaha, scores["knn5"].N, fitMaha, fitKnn), Combine(aMaha, scores["knn5"].A, fitMaha, fitKnn));
            Console.Write($"class {c}: {seconds:0}s");
            foreach (var (name, (n, a)) in scores)
            {
                double auc = BinaryMetrics.AreaUnderRoc([.. n, .. a], [.. n.Select(_ => false), .. a.Select(_ => true)]);
                Console.Write($"  {name} {100 * auc:0.00}");
                if (!all.TryGetValue(name, out var list)) all[name] = list = [];
                list.Add(auc);
            }
            Console.WriteLine();
        }
        Console.WriteLine("mean: " + string.Join("  ", all.Select(kv => $"{kv.Key} {100 * kv.Value.Average():0.00}")));
        return 0;
    }

    private static double[] Combine(double[] recon, double[] maha, double[] fitRecon, double[] fitMaha)
    {
        var (mr, sr) = MeanStd(fitRecon.Select(x => Math.Log(x)));
        var (mm, sm) = MeanStd(fitMaha.Select(x => Math.Log(x)));
        return recon.Select((r, i) => ((Math.Log(r) - mr) / sr) + ((Math.Log(maha[i]) - mm) / sm)).ToArray();
    }

    private static (double, double) MeanStd(IEnumerable<double> v)
    {
        var a = v.ToArray();
        double m = a.Average();
        return (m, Math.Sqrt(a.Select(x => (x - m) * (x - m)).Average()));
    }

    private static nn.Module<Tensor, Tensor> Make(string arch, int latent) => arch switch
    {
        "conv" => new ConvAutoencoder(1, 28, 28, latent),
        "dense" => new DenseAutoencoder(1, 28, 28, latent),
        _ => throw new ArgumentException(arch),
    };

    private static Tensor Batch(ImageSet set, ReadOnlySpan<int> idx)
    {
        var buf = new float[idx.Length * 784];
        for (int i = 0; i < idx.Length; i++) set.Image(idx[i]).CopyTo(buf.AsSpan(i * 784, 784));
        return tensor(buf, [idx.Length, 1, 28, 28]);
    }

    internal static Tensor Affine(Tensor x, double[] rotDeg, double[] dx, double[] dy)
    {
        long n = x.shape[0];
        var theta = new float[n * 6];
        for (int i = 0; i < n; i++)
        {
            double a = rotDeg[i] * Math.PI / 180;
            theta[6 * i] = (float)Math.Cos(a); theta[6 * i + 1] = (float)-Math.Sin(a); theta[6 * i + 2] = (float)(2 * dx[i] / 28);
            theta[6 * i + 3] = (float)Math.Sin(a); theta[6 * i + 4] = (float)Math.Cos(a); theta[6 * i + 5] = (float)(2 * dy[i] / 28);
        }
        var grid = nn.functional.affine_grid(tensor(theta, [n, 2, 3]), [n, 1, 28, 28], align_corners: false);
        return nn.functional.grid_sample(x, grid, GridSampleMode.Bilinear, GridSamplePaddingMode.Zeros, align_corners: false);
    }

    private static void Train(nn.Module<Tensor, Tensor> model, ImageSet data, int epochs, int batch, double lr, string loss, double rot, double shift, double p, Random rng, bool rot90)
    {
        using var opt = optim.Adam(model.parameters(), lr);
        var order = Enumerable.Range(0, data.Count).ToArray();
        model.train();
        for (int e = 0; e < epochs; e++)
        {
            rng.Shuffle(order);
            for (int b = 0; b < order.Length; b += batch)
            {
                int n = Math.Min(batch, order.Length - b);
                using var scope = NewDisposeScope();
                var clean = Batch(data, order.AsSpan(b, n));
                var input = clean;
                if (rot > 0 || shift > 0 || rot90)
                {
                    var r = new double[n]; var dx = new double[n]; var dy = new double[n];
                    for (int i = 0; i < n; i++)
                    {
                        if (rot90) r[i] = 90 * rng.Next(4);
                        if (rng.NextDouble() >= p) continue;
                        r[i] += (rng.NextDouble() * 2 - 1) * rot; dx[i] = (rng.NextDouble() * 2 - 1) * shift; dy[i] = (rng.NextDouble() * 2 - 1) * shift;
                    }
                    input = Affine(clean, r, dx, dy);
                }
                var output = model.forward(input);
                var l = loss == "mse" ? nn.functional.mse_loss(output, clean) : nn.functional.binary_cross_entropy(output, clean);
                opt.zero_grad();
                l.backward();
                opt.step();
            }
        }
    }

    private static double[] Recon(nn.Module<Tensor, Tensor> model, ImageSet set, List<(double Rot, double Dx, double Dy)> transforms)
    {
        var result = new double[set.Count];
        using var _ = no_grad();
        for (int b = 0; b < set.Count; b += 256)
        {
            int n = Math.Min(256, set.Count - b);
            using var scope = NewDisposeScope();
            var x = Batch(set, Enumerable.Range(b, n).ToArray());
            Tensor sum = zeros(n);
            foreach (var t in transforms)
            {
                var input = t == (0, 0, 0) ? x : Affine(x, Enumerable.Repeat(t.Rot, n).ToArray(), Enumerable.Repeat(t.Dx, n).ToArray(), Enumerable.Repeat(t.Dy, n).ToArray());
                sum = sum + (model.forward(input) - x).square().mean([1, 2, 3]);
            }
            var arr = (sum / transforms.Count).data<float>().ToArray();
            for (int i = 0; i < n; i++) result[b + i] = arr[i];
        }
        return result;
    }

    private static double[][] Codes(nn.Module<Tensor, Tensor> model, ImageSet set)
    {
        var enc = model switch
        {
            ConvAutoencoder c => c.Encoder,
            _ => throw new ArgumentException("no encoder"),
        };
        var list = new List<double[]>();
        using var _ = no_grad();
        for (int b = 0; b < set.Count; b += 256)
        {
            int n = Math.Min(256, set.Count - b);
            using var scope = NewDisposeScope();
            var z = enc.forward(Batch(set, Enumerable.Range(b, n).ToArray()));
            int d = (int)z.shape[1];
            var arr = z.data<float>().ToArray();
            for (int i = 0; i < n; i++) list.Add(arr.AsSpan(i * d, d).ToArray().Select(v => (double)v).ToArray());
        }
        return [.. list];
    }

    private static double[] Knn(double[][] train, double[][] query, int k, bool leaveOut = false)
    {
        if (leaveOut)
        {
            // The query points are in the bank: drop the nearest (itself).
            var withSelf = KnnList(train, query, k + 1);
            return withSelf.Select(l => l.Skip(1).Average() + 1e-9).ToArray();
        }
        var result = new double[query.Length];
        Parallel.For(0, query.Length, q =>
        {
            var best = new double[k];
            Array.Fill(best, double.MaxValue);
            foreach (var t in train)
            {
                double d = 0;
                for (int j = 0; j < t.Length; j++) { double x = t[j] - query[q][j]; d += x * x; }
                if (d < best[k - 1]) { best[k - 1] = d; Array.Sort(best); }
            }
            result[q] = best.Select(x => Math.Sqrt(x)).Average() + 1e-9;
        });
        return result;
    }

    private static double[][] KnnList(double[][] train, double[][] query, int k)
    {
        var result = new double[query.Length][];
        Parallel.For(0, query.Length, q =>
        {
            var best = new double[k];
            Array.Fill(best, double.MaxValue);
            foreach (var t in train)
            {
                double d = 0;
                for (int j = 0; j < t.Length; j++) { double x = t[j] - query[q][j]; d += x * x; }
                if (d < best[k - 1]) { best[k - 1] = d; Array.Sort(best); }
            }
            result[q] = best.Select(x => Math.Sqrt(x)).ToArray();
        });
        return result;
    }

    private sealed class Gaussian(double[] mean, double[,] inv)
    {
        public static Gaussian Fit(double[][] codes, int d)
        {
            var mean = new double[d];
            foreach (var c in codes) for (int j = 0; j < d; j++) mean[j] += c[j] / codes.Length;
            var cov = new double[d, d];
            foreach (var c in codes) for (int i = 0; i < d; i++) for (int j = 0; j < d; j++) cov[i, j] += (c[i] - mean[i]) * (c[j] - mean[j]) / codes.Length;
            double trace = 0;
            for (int i = 0; i < d; i++) trace += cov[i, i];
            for (int i = 0; i < d; i++) cov[i, i] += 1e-3 * trace / d;
            return new Gaussian(mean, Invert(cov, d));
        }

        public double Distance(double[] x)
        {
            int d = mean.Length;
            double s = 0;
            for (int i = 0; i < d; i++) for (int j = 0; j < d; j++) s += (x[i] - mean[i]) * inv[i, j] * (x[j] - mean[j]);
            return Math.Sqrt(Math.Max(s, 1e-12));
        }

        private static double[,] Invert(double[,] a, int n)
        {
            var m = new double[n, 2 * n];
            for (int i = 0; i < n; i++) { for (int j = 0; j < n; j++) m[i, j] = a[i, j]; m[i, n + i] = 1; }
            for (int c = 0; c < n; c++)
            {
                int piv = c;
                for (int r = c + 1; r < n; r++) if (Math.Abs(m[r, c]) > Math.Abs(m[piv, c])) piv = r;
                for (int j = 0; j < 2 * n; j++) (m[c, j], m[piv, j]) = (m[piv, j], m[c, j]);
                double div = m[c, c];
                for (int j = 0; j < 2 * n; j++) m[c, j] /= div;
                for (int r = 0; r < n; r++)
                {
                    if (r == c) continue;
                    double f = m[r, c];
                    for (int j = 0; j < 2 * n; j++) m[r, j] -= f * m[c, j];
                }
            }
            var inv = new double[n, n];
            for (int i = 0; i < n; i++) for (int j = 0; j < n; j++) inv[i, j] = m[i, n + j];
            return inv;
        }
    }
}
