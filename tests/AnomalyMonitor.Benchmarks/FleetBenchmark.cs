using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using AnomalyMonitor.Core.Imaging;
using AnomalyMonitor.Core.Models;
using AnomalyMonitor.Core.Storage;
using AnomalyMonitor.Core.Training;
using AnomalyMonitor.Hosting;
using AnomalyMonitor.State;
using AnomalyMonitor.Tests.Support;
using static TorchSharp.torch;

namespace AnomalyMonitor.Benchmarks;

/// <summary>
/// A fleet on one Mosquitto: a trainer (in this process) publishes a conv model, N scorer processes of the
/// real executable take it and share `$share/&lt;group&gt;/anomaly-monitor/images/#`; a publisher process sends raw
/// PNGs as fast as the broker takes them, and the clock stops when the scorers' judged counts add up.
/// On 2 cores no linear scaling is expected: the scorers, the broker and the publisher share them.
/// </summary>
internal static class FleetBenchmark
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static async Task<int> RunAsync(string dataDir, string scorersText, int items, int runs)
    {
        var (train, test) = Mnist.Load(dataDir);
        var root = Path.Combine(Path.GetTempPath(), "am-fleet-" + Guid.NewGuid().ToString("N")[..8]);
        Console.WriteLine($"# fleet: {items} raw PNG messages to a shared subscription, scorers {scorersText}, {runs} runs each; {Mnist.Machine()}");
        var staging = Path.Combine(root, "staging");
        ModelBuilder.TrainAndSave(train.Where(l => l == 1), new BuildRequest
        {
            Spec = ModelSpec.Create(ModelSpec.Conv, train.Shape),
            Training = new TrainingOptions { Epochs = 3, Seed = 1 },
        }, staging, CPU, TimeProvider.System);
        // As a registry holds it: v1, with its number in the manifest, which is what a trainer publishes.
        var v1 = Path.Combine(root, "trainer", "models", "v1");
        Directory.CreateDirectory(v1);
        foreach (var f in Directory.GetFiles(staging)) File.Copy(f, Path.Combine(v1, Path.GetFileName(f)));
        var manifest = JsonNode.Parse(File.ReadAllText(Path.Combine(v1, ModelFiles.ManifestFile)))!;
        manifest["version"] = 1;
        File.WriteAllText(Path.Combine(v1, ModelFiles.ManifestFile), manifest.ToJsonString());
        File.WriteAllText(Path.Combine(root, "trainer", "models", "current"), "v1\n");
        var ones = test.Where(l => l == 1);
        var payloads = Path.Combine(root, "ones.payloads");
        Publisher.WritePayloads(payloads, Enumerable.Range(0, 3000).Select(i => (Mnist.Png(ones.Image(i % ones.Count), ones.Shape), false)));

        await using var broker = await Mosquitto.StartAsync();
        var trainer = ServiceHost.Build(overrides: new Dictionary<string, string?>
        {
            ["Models:Path"] = "models",
            ["Mqtt:Broker"] = broker.Address,
            ["Fleet:Instance"] = "trainer",
            ["Fleet:Role"] = "trainer",
            ["Ingest:Mqtt:Enabled"] = "false",
            ["Ingest:Folder:Enabled"] = "false",
            ["Retrain:Enabled"] = "false",
            ["Web:Urls"] = "http://127.0.0.1:0",
            ["Logging:LogLevel:Default"] = "Warning",
        }, paths: new PathResolver(Path.Combine(root, "trainer")));
        await trainer.StartAsync();

        Console.WriteLine("| scorers | items | seconds | items/s | judged per scorer |");
        Console.WriteLine("|---|---|---|---|---|");
        var medians = new List<(int Scorers, double Rate)>();
        foreach (int n in scorersText.Split(',').Select(s => int.Parse(s, Inv)))
        {
            var rates = new List<double>();
            for (int run = 1; run <= runs; run++)
            {
                // A share group of its own: the broker keeps queueing a group's share for the persistent sessions of
                // scorers that left (the previous run's), so a reused group would lose half the stream to them.
                var group = $"bench-n{n}-r{run}";
                var scorers = Enumerable.Range(0, n).Select(i => StartScorer(Path.Combine(root, $"{group}-s{i}"), $"{group}-s{i}", group, broker.Address)).ToList();
                try
                {
                    foreach (var s in scorers)
                        await BacklogBenchmark.WaitAsync(s.Http, st => st.GetProperty("ready").GetBoolean() && st.GetProperty("modelVersion").GetInt32() == 1);
                    var clock = Stopwatch.StartNew();
                    using var publisher = await PipelineBenchmark.StartPublisherAsync(broker.Port, payloads, items, rate: 0, envelope: false);
                    long[] judged;
                    do
                    {
                        await Task.Delay(50);
                        judged = await Task.WhenAll(scorers.Select(s => BacklogBenchmark.JudgedAsync(s.Http)));
                    }
                    while (judged.Sum() < items);
                    double seconds = clock.Elapsed.TotalSeconds;
                    rates.Add(items / seconds);
                    Console.WriteLine($"| {n} | {items} | {seconds:0.00} | {items / seconds:0} | {string.Join(" / ", judged)} |");
                }
                finally
                {
                    foreach (var s in scorers)
                    {
                        await BacklogBenchmark.StopAsync(s.Process);
                        s.Process.Dispose();
                        s.Http.Dispose();
                    }
                }
            }
            medians.Add((n, rates.Order().ElementAt(rates.Count / 2)));
        }
        Console.WriteLine();
        foreach (var (n, rate) in medians)
            Console.WriteLine($"median with {n} scorer(s): {rate:0} items/s ({rate / medians[0].Rate:0.00}x one scorer)");
        await trainer.StopAsync();
        await trainer.DisposeAsync();
        try { Directory.Delete(root, true); } catch (IOException) { }
        return 0;
    }

    private sealed record Scorer(Process Process, HttpClient Http);

    private static Scorer StartScorer(string root, string instance, string group, string broker)
    {
        Directory.CreateDirectory(root);
        int port = Ports.Free();
        var config = Path.Combine(root, "scorer.json");
        File.WriteAllText(config, JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["Mqtt"] = new { Broker = broker },
            ["Fleet"] = new { Instance = instance, Role = "scorer" },
            ["Ingest"] = new { Folder = new { Enabled = false }, Mqtt = new { Topics = new[] { $"$share/{group}/anomaly-monitor/images/#" } } },
            ["Web"] = new { Urls = $"http://127.0.0.1:{port}" },
            ["Evidence"] = new { MaxCount = 2000 },
            ["Alerts"] = new { MaxPerMinute = 1_000_000 },
            ["Logging"] = new { LogLevel = new { Default = "Warning" } },
        }));
        return new Scorer(BacklogBenchmark.Service(root, config), new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") });
    }
}
