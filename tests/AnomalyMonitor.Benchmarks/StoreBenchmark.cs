using System.Diagnostics;
using AnomalyMonitor.Core.Imaging;
using AnomalyMonitor.Samples;
using AnomalyMonitor.State;
using AnomalyMonitor.Telemetry;
using Microsoft.Extensions.Options;

namespace AnomalyMonitor.Benchmarks;

/// <summary>
/// What the sample store costs per stored sample once it is full (every write also trims the oldest), in
/// chunks of 16 as the sink writes them under a flood: wall and process CPU µs, the bytes on disk, and
/// the time to read them all back as a retraining job does. The
/// images are 28x28 8-bit, as PNG and IDX sources decode them.
/// </summary>
internal static class StoreBenchmark
{
    public static int Run(int runs, int capacity)
    {
        Console.WriteLine($"# sample store, capacity {capacity:N0}, chunks of 16, {capacity:N0} samples written into a full store, median of {runs}; {Mnist.Machine()}");
        var shape = new ImageShape(1, 28, 28);
        var rng = new Random(1);
        var chunks = Enumerable.Range(0, 64).Select(c => Enumerable.Range(0, 16).Select(i =>
        {
            var pixels = new float[shape.PixelCount];
            for (int p = 0; p < pixels.Length; p++) pixels[p] = rng.Next(256) / 255f;
            return new NewSample($"item-{c}-{i}", "bench", DateTimeOffset.UnixEpoch, 0.01, 1, pixels);
        }).ToArray()).ToArray();
        var wall = new List<double>();
        var cpu = new List<double>();
        var snapshot = new List<double>();
        long bytes = 0;
        for (int run = 0; run < runs; run++)
        {
            var dir = Directory.CreateTempSubdirectory("store-bench-").FullName;
            try
            {
                using var store = new NormalSampleStore(Options.Create(new NormalStoreOptions { Path = "normals.db", Capacity = capacity }), new PathResolver(dir), new MonitorMetrics());
                for (int n = 0; n < capacity; n += 16) store.AddRange(chunks[(n / 16) % chunks.Length], shape);
                var process = Process.GetCurrentProcess();
                var cpu0 = process.TotalProcessorTime;
                var clock = Stopwatch.StartNew();
                for (int n = 0; n < capacity; n += 16) store.AddRange(chunks[(n / 16) % chunks.Length], shape);
                clock.Stop();
                process.Refresh();
                wall.Add(clock.Elapsed.TotalMicroseconds / capacity);
                cpu.Add((process.TotalProcessorTime - cpu0).TotalMicroseconds / capacity);
                bytes = Directory.EnumerateFiles(dir).Sum(f => new FileInfo(f).Length);
                // What a retraining job reads first: every stored sample.
                clock.Restart();
                int read = store.Snapshot(shape, DateTimeOffset.MaxValue).Images.Count;
                snapshot.Add(clock.Elapsed.TotalMilliseconds);
                if (read != capacity) throw new InvalidOperationException($"the snapshot read {read} samples of {capacity}");
            }
            finally { Directory.Delete(dir, recursive: true); }
        }
        Console.WriteLine($"µs per stored sample, full store: wall {Median(wall):0.0} ({string.Join(", ", wall.Select(w => w.ToString("0.0")))}), process CPU {Median(cpu):0.0}; files on disk {bytes / 1e6:0.0} MB; a snapshot of all {capacity:N0} for retraining {Median(snapshot):0} ms");
        return 0;
    }

    private static double Median(List<double> values) => values.Order().ElementAt(values.Count / 2);
}
