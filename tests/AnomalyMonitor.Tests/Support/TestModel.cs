using AnomalyMonitor.Core.Imaging;
using AnomalyMonitor.Core.Scoring;
using AnomalyMonitor.Core.Storage;
using AnomalyMonitor.Core.Thresholds;
using TorchSharp;

namespace AnomalyMonitor.Tests.Support;

/// <summary>
/// Small dense models checked in under Assets/ (written by the benchmarks' test-assets command), so every
/// run judges with the same weights, and the images the plumbing tests send: normals and anomalies whose
/// verdicts are certain by a wide margin, checked against the model itself the first time they are asked for.
/// </summary>
public static class TestModel
{
    public const int Size = 16;
    public static readonly ImageShape Shape = new(1, Size, Size);

    /// <summary>Normals sit below this z on the model's calibration (log space), so the judge accepts them and the store keeps them.</summary>
    public const double NormalZ = 1;
    /// <summary>Anomalies sit above this z: 3σ past the tests' threshold (k = 4), an error over 5 times the threshold's.</summary>
    public const double AnomalyZ = 7;

    private static string Asset(string name) => Path.Combine(AppContext.BaseDirectory, "Assets", name);

    public static void CopyTo(string directory) => Copy(Asset("blob-model"), directory);

    /// <summary>Installs a model as version v1 of a registry under <paramref name="modelsDirectory"/>, and makes it current.</summary>
    /// <param name="weak">One epoch on 40 blobs: any reasonable retraining beats it.</param>
    /// <param name="loss">Mse: the weak model trained with MSE, whose loss a NaN pixel turns NaN.</param>
    public static void InstallAsV1(string modelsDirectory, bool weak = false, LossKind loss = LossKind.Bce)
    {
        var v1 = Path.Combine(modelsDirectory, "v1");
        Copy(Asset(loss == LossKind.Mse ? "mse-model" : weak ? "weak-model" : "blob-model"), v1);
        // As a registry writes it: the manifest knows its version (the weights' checksum does not cover the manifest).
        var manifest = Path.Combine(v1, ModelFiles.ManifestFile);
        var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(manifest))!;
        json["version"] = 1;
        File.WriteAllText(manifest, json.ToJsonString());
        File.WriteAllText(Path.Combine(modelsDirectory, "current"), "v1\n");
    }

    /// <summary>
    /// Copies version <paramref name="from"/> of a registry to <paramref name="to"/> (same weights, so their checksum
    /// holds), with the manifest's version set and <paramref name="edit"/> applied to it.
    /// </summary>
    public static void CopyVersion(string modelsDirectory, int from, int to, Action<System.Text.Json.Nodes.JsonNode>? edit = null)
    {
        var target = Path.Combine(modelsDirectory, $"v{to}");
        Copy(Path.Combine(modelsDirectory, $"v{from}"), target);
        var manifest = Path.Combine(target, ModelFiles.ManifestFile);
        var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(manifest))!;
        json["version"] = to;
        edit?.Invoke(json);
        File.WriteAllText(manifest, json.ToJsonString());
    }

    private static void Copy(string from, string directory)
    {
        Directory.CreateDirectory(directory);
        foreach (var f in Directory.GetFiles(from)) File.Copy(f, Path.Combine(directory, Path.GetFileName(f)), true);
    }

    /// <summary>The i-th vetted normal image as a PNG; i cycles over the set.</summary>
    public static byte[] NormalPng(int i) => Vetted.Value.Normals[(i & int.MaxValue) % Vetted.Value.Normals.Count];

    /// <summary>The i-th vetted anomaly as a PNG: stripes for even i, noise for odd i.</summary>
    public static byte[] AnomalyPng(int i) => Vetted.Value.Anomalies[(i & int.MaxValue) % Vetted.Value.Anomalies.Count];

    /// <summary>The pixels of the i-th vetted normal, as the service decodes them from its PNG.</summary>
    public static float[] NormalPixels(int i) => ImageDecoder.Decode(NormalPng(i), "normal", Shape);

    /// <summary>Generated blobs as store samples (what the pipeline stores for accepted items); each call draws from its own seed.</summary>
    public static List<AnomalyMonitor.Samples.NewSample> Samples(int count, int seed, string prefix = "s", DateTimeOffset? receivedAt = null)
    {
        var rng = new Random(seed);
        var at = receivedAt ?? DateTimeOffset.UnixEpoch;
        return [.. Enumerable.Range(0, count).Select(i => new AnomalyMonitor.Samples.NewSample($"{prefix}{i}", "test", at, 0.01, 1, Synthetic.Blob(rng, Size)))];
    }

    /// <summary>
    /// The i-th vetted near-cut image: normal by its score alone (0.5 &lt; z &lt; 0.9, inside the accept cut at z = 1),
    /// but in the top band of the accepted range (from z = 0.34 on a Gaussian calibration), where a block of
    /// normals puts only a quarter. A stream of them is what near-miss anomalies look like to the judge's guard.
    /// </summary>
    public static byte[] NearCutPng(int i) => Vetted.Value.NearCut[(i & int.MaxValue) % Vetted.Value.NearCut.Count];

    private sealed record Images(IReadOnlyList<byte[]> Normals, IReadOnlyList<byte[]> Anomalies, IReadOnlyList<byte[]> NearCut);

    private static readonly Lazy<Images> Vetted = new(Vet);

    /// <summary>
    /// Scores candidate images with the checked-in model and keeps only those whose verdict cannot be
    /// in doubt. Deterministic: fixed generator seeds, fixed weights. Fails loudly if the assets no longer
    /// give enough such images, rather than letting a test depend on a borderline verdict.
    /// </summary>
    private static Images Vet()
    {
        using var model = ModelFiles.Load(Asset("blob-model"), torch.CPU);
        var calibration = model.Manifest.Calibration;
        var scorer = model.CreateScorer();
        double Z(byte[] png)
        {
            var output = new ScoreOutput(1, Shape, detailed: false);
            scorer.ScoreBatch(ImageDecoder.Decode(png, "vet", Shape), 1, output);
            return (Statistics.SafeLog(output.Errors[0]) - calibration.LogMean) / calibration.LogStd;
        }

        var rng = new Random(2024);
        var normals = new List<byte[]>();
        for (int tries = 0; normals.Count < 64 && tries < 2000; tries++)
        {
            var png = Synthetic.Png(Synthetic.Blob(rng, Size), Size);
            if (Z(png) is > -3 and < NormalZ) normals.Add(png);
        }
        var anomalies = new List<byte[]>();
        for (int i = 0; anomalies.Count < 16 && i < 200; i++)
        {
            var local = new Random(5000 + i);
            var png = Synthetic.Png(anomalies.Count % 2 == 0 ? Synthetic.Stripes(local, Size) : Synthetic.Noise(local, Size), Size);
            if (Z(png) > AnomalyZ) anomalies.Add(png);
        }
        var nearCut = new List<byte[]>();
        var nearRng = new Random(4048);
        for (int tries = 0; nearCut.Count < 16 && tries < 4000; tries++)
        {
            var png = Synthetic.Png(Synthetic.Blob(nearRng, Size), Size);
            if (Z(png) is > 0.5 and < 0.9) nearCut.Add(png);
        }
        if (normals.Count < 64 || anomalies.Count < 16 || nearCut.Count < 16)
            throw new InvalidOperationException($"The test model gives only {normals.Count} clear normals, {anomalies.Count} clear anomalies and {nearCut.Count} near-cut images; regenerate Assets/ (test-assets).");
        return new Images(normals, anomalies, nearCut);
    }
}
