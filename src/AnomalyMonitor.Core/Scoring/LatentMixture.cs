using static TorchSharp.torch;

namespace AnomalyMonitor.Core.Scoring;

/// <summary>
/// A mixture of K Gaussians fitted to the normal training codes: one per writing style, where a single
/// Gaussian spreads over all of them and covers the space between. Fitted by k-means, then EM; each
/// covariance is shrunk towards its average variance, as the single Gaussian's is. An image's score is
/// the mixture's negative log-likelihood, shifted and scaled so that one component reduces it to the
/// single Gaussian's score, the squared Mahalanobis distance over the dimensions (positive, about 1 for
/// a normal code).
/// </summary>
public sealed record LatentMixture(float[] Weights, float[][] Means, float[][] Precisions, double[] LogDeterminants)
{
    public int Components => Weights.Length;
    public int Dimensions => Means[0].Length;

    /// <summary>Fits <paramref name="components"/> Gaussians to N x d codes (any device; fitted on the CPU in double precision).</summary>
    public static LatentMixture Fit(Tensor codes, int components, double shrinkage = 0.01, int iterations = 30, int seed = 1)
    {
        using var scope = NewDisposeScope();
        var x = codes.detach().cpu().to(float64);
        long n = x.shape[0];
        if (components < 1) throw new ArgumentException($"A latent mixture needs at least 1 component, got {components}.", nameof(components));
        if (n < 2 * components) throw new ArgumentException($"A latent mixture of {components} components needs at least {2 * components} codes, got {n}.", nameof(codes));
        var resp = nn.functional.one_hot(KMeans(x, components, seed), components).to(float64);
        var fitted = MStep(x, resp, shrinkage);
        for (int it = 0; it < iterations; it++)
        {
            if (it > 0) fitted = MStep(x, resp, shrinkage);
            var logp = LogLikelihoods(x, fitted.LogWeights, fitted.Means, fitted.Precisions, fitted.LogDets);
            resp = (logp - logp.logsumexp(1, keepdim: true)).exp();
        }
        return new LatentMixture(
            [.. fitted.LogWeights.exp().data<double>().ToArray().Select(v => (float)v)],
            [.. Enumerable.Range(0, components).Select(k => fitted.Means[k].to(float32).data<float>().ToArray())],
            [.. fitted.Precisions.Select(p => p.to(float32).flatten().data<float>().ToArray())],
            fitted.LogDets);
    }

    /// <summary>
    /// Several fits as one mixture: every component of each, its weight divided by the number of fits, so the
    /// density is the fits' average. On a small sample one k-means seed's luck moves recall at 1% false alarms
    /// by ten points (docs/benchmarks.md, 2b); the average of a few seeds' fits does not depend on one.
    /// </summary>
    public static LatentMixture Pool(IReadOnlyList<LatentMixture> fits)
    {
        if (fits.Count == 0) throw new ArgumentException("Pooling needs at least one fit.", nameof(fits));
        if (fits.Count == 1) return fits[0];
        return new(
            [.. fits.SelectMany(f => f.Weights.Select(w => w / fits.Count))],
            [.. fits.SelectMany(f => f.Means)],
            [.. fits.SelectMany(f => f.Precisions)],
            [.. fits.SelectMany(f => f.LogDeterminants)]);
    }

    /// <summary>Hard assignments after a few rounds of k-means from K seeded codes.</summary>
    private static Tensor KMeans(Tensor x, int components, int seed)
    {
        long n = x.shape[0];
        var rng = new Random(seed);
        var start = Enumerable.Range(0, (int)n).OrderBy(_ => rng.Next()).Take(components).Select(i => (long)i).ToArray();
        var centres = x.index_select(0, tensor(start));
        for (int it = 0; it < 10; it++)
        {
            var assign = cdist(x, centres).argmin(1);
            centres = stack([.. Enumerable.Range(0, components).Select(k =>
            {
                var members = (assign == k).nonzero().flatten();
                return members.shape[0] > 0 ? x.index_select(0, members).mean([0L]) : centres[k];
            })]);
        }
        return cdist(x, centres).argmin(1);
    }

    private static (Tensor LogWeights, Tensor Means, Tensor[] Precisions, double[] LogDets) MStep(Tensor x, Tensor resp, double shrinkage)
    {
        long n = x.shape[0], d = x.shape[1];
        int components = (int)resp.shape[1];
        var counts = resp.sum([0L]) + 1e-9; // sum(0) would read the 0 as a ScalarType
        var means = resp.t().matmul(x) / counts.unsqueeze(1);
        var precisions = new Tensor[components];
        var logDets = new double[components];
        for (int k = 0; k < components; k++)
        {
            var centred = x - means[k];
            var cov = (centred * resp.select(1, k).unsqueeze(1)).t().matmul(centred) / counts.select(0, k);
            // A dead unit (a ReLU that never fires) has zero variance: the floor keeps the inverse finite.
            double average = Math.Max(cov.diagonal().mean().item<double>(), 1e-12);
            double rho = Shrinkage.IsAuto(shrinkage)
                ? Shrinkage.Oas(cov, counts.select(0, k).item<double>())
                : shrinkage;
            cov = ((1 - rho) * cov) + (rho * average * eye(d, dtype: float64));
            var factor = linalg.cholesky(cov);
            precisions[k] = cholesky_inverse(factor);
            logDets[k] = 2 * factor.diagonal().log().sum().item<double>();
        }
        return ((counts / n).log(), means, precisions, logDets);
    }

    /// <summary>N x K: each component's log weight less half its log-determinant and half the squared Mahalanobis distance.</summary>
    private static Tensor LogLikelihoods(Tensor x, Tensor logWeights, Tensor means, Tensor[] precisions, double[] logDets) =>
        stack([.. Enumerable.Range(0, precisions.Length).Select(k =>
        {
            var centred = x - means[k];
            var mahalanobis = (centred.matmul(precisions[k]) * centred).sum([1L]);
            return logWeights[k] - (0.5 * logDets[k]) - (0.5 * mahalanobis);
        })], 1);

    /// <summary>
    /// The score of each row of N x d codes (see the summary); call inside a dispose scope. All components at once,
    /// from tensors laid out once per device: a batch costs about ten tensor ops whatever K is, where building K
    /// precision tensors and scoring one component at a time cost eight ops and a 16 KiB copy per component per
    /// batch, most of a small batch's latent score (docs/benchmarks.md, 4b). No scalar operands: every constant
    /// is a tensor of its own.
    /// </summary>
    public Tensor Score(Tensor codes, Device device)
    {
        var t = _cache.For(this, device);
        var centred = codes.flatten(1).unsqueeze(0) - t.Means;                 // K x N x d
        var halfMahalanobis = (centred.bmm(t.HalfPrecisions) * centred).sum([2L]); // K x N
        var logp = t.LogOffsets - halfMahalanobis;                              // log w_k − ½ log|Σ_k| − ½ m_k
        // 2·max_k(log w_k − ½ log|Σ_k|) + 2 log K bounds −2·logsumexp from below: the shifted score is never negative.
        return (t.Bound - logp.logsumexp(0)).relu() * t.TwoOverD;
    }

    /// <summary>The same score, one component at a time in double precision on the CPU: the reference the tests hold <see cref="Score"/> to.</summary>
    internal double[] ScoreReference(float[] codes, int count)
    {
        using var scope = NewDisposeScope();
        int d = Dimensions;
        var x = tensor(codes, [count, d]).to(float64);
        var means = tensor(Means.SelectMany(m => m).ToArray(), [Components, d]).to(float64);
        var precisions = Precisions.Select(p => tensor(p, [d, d]).to(float64)).ToArray();
        var logp = LogLikelihoods(x, tensor(Weights).to(float64).log(), means, precisions, LogDeterminants);
        double bound = Enumerable.Range(0, Components).Max(k => Math.Log(Weights[k]) - (0.5 * LogDeterminants[k])) + Math.Log(Components);
        return ((2 * bound) - (2 * logp.logsumexp(1))).clamp_min(0).div(d).data<double>().ToArray();
    }

    /// <summary>Frees the scoring tensors (a model being let go of); a later score lays them out again.</summary>
    public void ReleaseScoringTensors() => _cache.Release();

    private readonly ScoringCache _cache = new();

    /// <summary>The tensors laid out for scoring now, none before the first score or after a release: the tests' leak check.</summary>
    internal IReadOnlyList<Tensor> ScoringTensors => _cache.Tensors;

    /// <summary>A copy (<c>with</c>) gets a cache of its own: the cached tensors describe the instance that laid them out.</summary>
    private LatentMixture(LatentMixture original)
    {
        Weights = original.Weights;
        Means = original.Means;
        Precisions = original.Precisions;
        LogDeterminants = original.LogDeterminants;
        _cache = new();
    }

    /// <summary>Equal when the fitted arrays are the same ones, as before the cache: it is not part of the value.</summary>
    public bool Equals(LatentMixture? other) =>
        other is not null && ReferenceEquals(Weights, other.Weights) && ReferenceEquals(Means, other.Means)
        && ReferenceEquals(Precisions, other.Precisions) && ReferenceEquals(LogDeterminants, other.LogDeterminants);

    public override int GetHashCode() => HashCode.Combine(Weights, Means, Precisions, LogDeterminants);

    /// <summary>The mixture laid out for scoring on one device, outside every dispose scope; shared by the scoring lanes.</summary>
    private sealed class ScoringCache
    {
        private readonly Lock _gate = new();
        private Laid? _laid;

        public Laid For(LatentMixture m, Device device)
        {
            var laid = Volatile.Read(ref _laid);
            if (laid is not null && laid.On(device)) return laid;
            lock (_gate)
            {
                if (_laid is not null && _laid.On(device)) return _laid;
                _laid?.Dispose(); // another device: a process scores on one, so this is a move, not a flip-flop
                return _laid = Laid.Of(m, device);
            }
        }

        public IReadOnlyList<Tensor> Tensors => Volatile.Read(ref _laid) is { } l ? [l.Means, l.HalfPrecisions, l.LogOffsets, l.Bound, l.TwoOverD] : [];

        public void Release()
        {
            lock (_gate)
            {
                _laid?.Dispose();
                _laid = null;
            }
        }
    }

    private sealed record Laid(TorchSharp.DeviceType Type, int Index, Tensor Means, Tensor HalfPrecisions, Tensor LogOffsets, Tensor Bound, Tensor TwoOverD) : IDisposable
    {
        public bool On(Device device) => device.type == Type && device.index == Index;

        public static Laid Of(LatentMixture m, Device device)
        {
            int k = m.Components, d = m.Dimensions;
            var half = new float[k * d * d];
            for (int c = 0; c < k; c++)
                for (int i = 0; i < d * d; i++) half[(c * d * d) + i] = 0.5f * m.Precisions[c][i];
            var offsets = Enumerable.Range(0, k).Select(c => (float)(Math.Log(m.Weights[c]) - (0.5 * m.LogDeterminants[c]))).ToArray();
            double bound = offsets.Max(v => (double)v) + Math.Log(k);
            Tensor Keep(Tensor t) => t.DetachFromDisposeScope();
            return new Laid(device.type, device.index,
                Keep(tensor(m.Means.SelectMany(v => v).ToArray(), [k, 1, d], device: device)),
                Keep(tensor(half, [k, d, d], device: device)),
                Keep(tensor(offsets, [k, 1], device: device)),
                Keep(tensor(new[] { (float)bound }, [1], device: device)),
                Keep(tensor(new[] { 2f / d }, [1], device: device)));
        }

        public void Dispose()
        {
            Means.Dispose();
            HalfPrecisions.Dispose();
            LogOffsets.Dispose();
            Bound.Dispose();
            TwoOverD.Dispose();
        }
    }

    /// <summary>What keeps this mixture from scoring codes of <paramref name="dimensions"/> values; empty when it can.</summary>
    public IEnumerable<string> Problems(int dimensions)
    {
        if (Components < 1 || Means.Length != Components || Precisions.Length != Components || LogDeterminants.Length != Components)
            yield return $"its latent mixture lists {Weights.Length} weights, {Means.Length} means, {Precisions.Length} precisions and {LogDeterminants.Length} log-determinants";
        else if (Means.Any(m => m.Length != dimensions) || Precisions.Any(p => p.Length != dimensions * dimensions))
            yield return $"its latent mixture does not have {dimensions} dimensions for a code of {dimensions}";
    }
}
