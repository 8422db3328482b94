using System.Diagnostics;
using AnomalyMonitor.Alerts;
using AnomalyMonitor.Core.Imaging;
using AnomalyMonitor.Evidence;
using AnomalyMonitor.State;
using AnomalyMonitor.Telemetry;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace AnomalyMonitor.Benchmarks;

/// <summary>
/// What one anomaly's evidence record costs the writer (a folder, three PNGs and the JSON record), in wall
/// and process CPU µs, how much of it is encoding the PNGs, and what deleting it again costs once the store
/// is full (every record in is then one out). Records land in a temporary folder under
/// --dir (default: the system's temporary folder), which is where the file system's cost comes from.
/// </summary>
internal static class EvidenceBenchmark
{
    public static int Run(int runs, int records, string? root)
    {
        Console.WriteLine($"# evidence records, 28x28x1, {records:N0} a run, median of {runs}, under {root ?? Path.GetTempPath()}; {Mnist.Machine()}");
        var shape = new ImageShape(1, 28, 28);
        var rng = new Random(1);
        float[] Image() { var p = new float[shape.PixelCount]; for (int i = 0; i < p.Length; i++) p[i] = PixelBytes.Levels[rng.Next(256)]; return p; }
        var images = Enumerable.Range(0, 32).Select(_ => (Original: Image(), Reconstruction: Image(), Error: Image())).ToArray();
        var alert = new AnomalyAlert("anomaly", "item", "bench", DateTimeOffset.UnixEpoch, DateTimeOffset.UnixEpoch, 0.5, 0.1, 9, 0.05, 0.01, "error", 1, null, 0, null);
        var wall = new List<double>();
        var cpu = new List<double>();
        var encode = new List<double>();
        var prune = new List<double>();
        for (int run = 0; run < runs; run++)
        {
            var dir = (root is null ? Directory.CreateTempSubdirectory("evidence-bench-") : Directory.CreateDirectory(Path.Combine(root, $"evidence-bench-{Guid.NewGuid():N}"))).FullName;
            try
            {
                                using var store = new EvidenceStore(Options.Create(new EvidenceOptions { Path = "evidence", MaxCount = 1_000_000 }), new PathResolver(dir), TimeProvider.System, new MonitorMetrics(), NullLogger<EvidenceStore>.Instance);
                var process = Process.GetCurrentProcess();
                var cpu0 = process.TotalProcessorTime;
                var clock = Stopwatch.StartNew();
                for (int n = 0; n < records; n++)
                {
                    var (o, r, e) = images[n % images.Length];
                    store.Write(store.Reserve($"item-{n}"), shape, o, r, e, alert);
                }
                clock.Stop();
                process.Refresh();
                wall.Add(clock.Elapsed.TotalMicroseconds / records);
                cpu.Add((process.TotalProcessorTime - cpu0).TotalMicroseconds / records);
                // The encoding alone, as the writer does it: two images and a heatmap.
                clock.Restart();
                for (int n = 0; n < records; n++)
                {
                    var (o, r, e) = images[n % images.Length];
                    _ = ImageEncoder.EncodePng(o, shape);
                    _ = ImageEncoder.EncodePng(r, shape);
                    using var heat = ImageEncoder.ToHeatmap(e, shape.Height, shape.Width);
                    _ = ImageEncoder.EncodePng(heat);
                }
                encode.Add(clock.Elapsed.TotalMicroseconds / records);
                // Deleting them again, as pruning does once the store is full: a second store over the same folder, bounded at one.
                using var bounded = new EvidenceStore(Options.Create(new EvidenceOptions { Path = "evidence", MaxCount = 1 }), new PathResolver(dir), TimeProvider.System, new MonitorMetrics(), NullLogger<EvidenceStore>.Instance);
                process.Refresh();
                cpu0 = process.TotalProcessorTime;
                clock.Restart();
                int deleted = bounded.Prune();
                process.Refresh();
                prune.Add((process.TotalProcessorTime - cpu0).TotalMicroseconds / Math.Max(1, deleted));
            }
            finally { Directory.Delete(dir, recursive: true); }
        }
        Console.WriteLine($"µs per evidence record: wall {Median(wall):0} ({string.Join(", ", wall.Select(w => w.ToString("0")))}), process CPU {Median(cpu):0}; of which encoding the three PNGs {Median(encode):0} ({string.Join(", ", encode.Select(w => w.ToString("0")))}); deleting a record, process CPU {Median(prune):0} ({string.Join(", ", prune.Select(w => w.ToString("0")))})");
        return 0;
    }

    private static double Median(List<double> values) => values.Order().ElementAt(values.Count / 2);
}
