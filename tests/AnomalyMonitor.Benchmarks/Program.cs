using System.CommandLine;
using AnomalyMonitor.Benchmarks;

// A plain harness, not BenchmarkDotNet: each benchmark trains real models for minutes, so the
// statistics that matter are across seeds and batch sizes, printed as Markdown for docs/benchmarks.md.
var data = new Option<string>("--data") { Description = "MNIST IDX directory.", DefaultValueFactory = _ => "../shared/data/mnist" };
var root = new RootCommand("anomaly-monitor benchmarks (not part of the test suite; see docs/benchmarks.md)");

var speed = new Command("speed", "Training and scoring throughput and peak memory, conv model at 28x28.") { data };
speed.SetAction(p => SpeedBenchmark.Run(p.GetValue(data)!));
root.Add(speed);

var densityRuns = new Option<int>("--runs") { DefaultValueFactory = _ => 3 };
var density = new Command("density", "Seconds to fit the latent density after training: one fit, against three pooled fits on all codes with cross-fitted calibration.") { densityRuns };
density.SetAction(p => DensityBenchmark.Run(p.GetValue(densityRuns)));
root.Add(density);

var worksheet = new Command("worksheet", "Worksheet 000 replication: conv, BCE, 20 epochs, digit 1, mean+3σ of the training MSE.") { data };
worksheet.SetAction(p => WorksheetBenchmark.Run(p.GetValue(data)!));
root.Add(worksheet);

var digits = new Option<string>("--digits") { DefaultValueFactory = _ => "0,1,2,3,4,5,6,7,8,9" };
var seeds = new Option<string>("--seeds") { DefaultValueFactory = _ => "1,2,3" };
var settings = new Option<string[]>("--set") { Description = "Override a default: epochs=10, latent=8, noise=gaussian:0.3, loss=mse, error=bce, arch=dense, patience=0, threshold=..." , AllowMultipleArgumentsPerToken = true };
var oneClass = new Command("oneclass", "One-class MNIST: train on one digit, test on all 10,000 test images, per digit and seed.") { data, digits, seeds, settings };
oneClass.SetAction(p => OneClassBenchmark.Run(p.GetValue(data)!, p.GetValue(digits)!, p.GetValue(seeds)!, p.GetValue(settings) ?? []));
root.Add(oneClass);

var soak = new Option<int>("--soak-items") { DefaultValueFactory = _ => 1_000_000 };
var scorerKind = new Option<string>("--scorer") { Description = "conv (a conv autoencoder scored by its reconstruction error), recommended (the detector a cold start builds: conv, latent 64, a 5-Gaussian latent score), or null (no model: the ceiling of the service's own path).", DefaultValueFactory = _ => "conv" };
var pipelineRuns = new Option<int>("--runs") { DefaultValueFactory = _ => 3 };
var mqttItems = new Option<int>("--mqtt-items") { DefaultValueFactory = _ => 20_000 };
var lanes = new Option<int>("--lanes") { Description = "Models:Lanes for the service (0: its default).", DefaultValueFactory = _ => 0 };
var pipelineWarmUp = new Option<int>("--warm-up") { Description = "Uncounted runs of every path first, so that the JIT's tier-up in a fresh process is not timed (0: time it).", DefaultValueFactory = _ => 1 };
var serviceSettings = new Option<string[]>("--set") { Description = "A service setting for the run, Key=Value (Ingest:Folder:MoveQueue=0): an A/B of one option.", AllowMultipleArgumentsPerToken = true };
var brokerLines = new Option<string[]>("--broker") { Description = "A line for Mosquitto's configuration, after the defaults (\"set_tcp_nodelay false\": Nagle's algorithm back on).", AllowMultipleArgumentsPerToken = false };
var latencyNice = new Option<int>("--latency-nice") { Description = "The nice value of the latency loads' publisher (19: it takes only CPU the service leaves, as a publisher on another machine would).", DefaultValueFactory = _ => 0 };
var latencyCapacity = new Option<double>("--latency-capacity") { Description = "Measure only the latency loads, --runs times, at 10% and 50% of this many msg/s (0: of the envelope path's measured capacity, after the throughput paths).", DefaultValueFactory = _ => 0 };
var latencySeconds = new Option<int>("--latency-seconds") { Description = "How long each latency load publishes (its p99 is the 1% slowest of its anomalies' alerts).", DefaultValueFactory = _ => 6 };
var pipeline = new Command("pipeline", "The service end to end: folder and MQTT throughput vs raw forward, CPU µs per item by stage, alert latency at 10% and 50% of capacity, RSS and tensors over a soak.")
    { data, soak, scorerKind, pipelineRuns, mqttItems, lanes, serviceSettings, pipelineWarmUp, brokerLines, latencyNice, latencyCapacity, latencySeconds };
pipeline.SetAction((p, ct) => PipelineBenchmark.RunAsync(p.GetValue(data)!, p.GetValue(scorerKind)!, p.GetValue(pipelineRuns), p.GetValue(soak), p.GetValue(mqttItems), p.GetValue(lanes),
    (p.GetValue(serviceSettings) ?? []).Select(s => s.Split('=', 2)).ToDictionary(kv => kv[0], kv => (string?)(kv.Length > 1 ? kv[1] : "")), p.GetValue(pipelineWarmUp), p.GetValue(brokerLines), p.GetValue(latencyNice),
    p.GetValue(latencyCapacity), p.GetValue(latencySeconds)));
root.Add(pipeline);

var fleetScorers = new Option<string>("--scorers") { DefaultValueFactory = _ => "1,2,3" };
var fleetItems = new Option<int>("--items") { DefaultValueFactory = _ => 20_000 };
var fleetRuns = new Option<int>("--runs") { DefaultValueFactory = _ => 3 };
var fleet = new Command("fleet", "A trainer and 1, 2, 3 scorer processes sharing one Mosquitto subscription: items/s for each count.") { data, fleetScorers, fleetItems, fleetRuns };
fleet.SetAction((p, ct) => FleetBenchmark.RunAsync(p.GetValue(data)!, p.GetValue(fleetScorers)!, p.GetValue(fleetItems), p.GetValue(fleetRuns)));
root.Add(fleet);

// The pipeline benchmark's publisher, in a process of its own.
var pubPort = new Option<int>("--port");
var pubTopic = new Option<string>("--topic") { DefaultValueFactory = _ => "anomaly-monitor/images/bench" };
var pubPayloads = new Option<string>("--payloads");
var pubCount = new Option<int>("--count");
var pubRate = new Option<double>("--rate") { Description = "Messages a second; 0: as fast as the broker takes them." };
var pubEnvelope = new Option<bool>("--envelope");
var publish = new Command("publish", "Publish payloads to a broker (used by the pipeline benchmark).") { pubPort, pubTopic, pubPayloads, pubCount, pubRate, pubEnvelope };
publish.Hidden = true;
publish.SetAction((p, ct) => Publisher.RunAsync(p.GetValue(pubPort), p.GetValue(pubTopic)!, p.GetValue(pubPayloads)!, p.GetValue(pubCount), p.GetValue(pubRate), p.GetValue(pubEnvelope)));
root.Add(publish);

var partsRuns = new Option<int>("--runs") { DefaultValueFactory = _ => 7 };
var scoreParts = new Command("score-parts", "What the scorer adds to a bare forward pass at batch 32 on one thread, and the cost of copying its outputs to .NET.") { partsRuns };
scoreParts.SetAction(p => ScorePartsBenchmark.Run(p.GetValue(partsRuns)));
root.Add(scoreParts);
var shapesMax = new Option<int>("--max-batch") { Description = "Batch sizes 1 to this.", DefaultValueFactory = _ => 32 };
var shapesThreads = new Option<int>("--threads") { Description = "libtorch threads (a scoring lane's count).", DefaultValueFactory = _ => 1 };
var shapes = new Command("shapes", "The first forward pass at each batch size against the later ones: what a new input shape costs oneDNN.") { shapesMax, shapesThreads };
shapes.SetAction(p => ShapesBenchmark.Run(p.GetValue(shapesMax), p.GetValue(shapesThreads)));
root.Add(shapes);

var storeRuns = new Option<int>("--runs") { DefaultValueFactory = _ => 5 };
var storeCapacity = new Option<int>("--capacity") { DefaultValueFactory = _ => 20_000 };
var store = new Command("store", "The sample store's cost per stored sample once full, in the sink's chunks of 16.") { storeRuns, storeCapacity };
store.SetAction(p => StoreBenchmark.Run(p.GetValue(storeRuns), p.GetValue(storeCapacity)));
root.Add(store);

var evidenceRuns = new Option<int>("--runs") { DefaultValueFactory = _ => 5 };
var evidenceRecords = new Option<int>("--records") { DefaultValueFactory = _ => 2_000 };
var evidenceDir = new Option<string?>("--dir") { Description = "Where the records go (default: the system's temporary folder)." };
var evidenceBench = new Command("evidence", "What one anomaly's evidence record costs the writer, and how much of it is encoding the PNGs.") { evidenceRuns, evidenceRecords, evidenceDir };
evidenceBench.SetAction(p => EvidenceBenchmark.Run(p.GetValue(evidenceRuns), p.GetValue(evidenceRecords), p.GetValue(evidenceDir)));
root.Add(evidenceBench);

var storeSamples = new Option<int>("--samples") { DefaultValueFactory = _ => 20_000 };
var retrainThreads = new Option<int>("--threads") { DefaultValueFactory = _ => 1 };
var retrain = new Command("retrain", "Retraining in the service: 20 epochs on the stored samples, alone and while scoring; scoring throughput during it vs idle.") { data, storeSamples, retrainThreads };
retrain.SetAction((p, ct) => RetrainBenchmark.RunAsync(p.GetValue(data)!, p.GetValue(storeSamples), p.GetValue(retrainThreads)));
root.Add(retrain);

var classes = new Option<string>("--classes") { DefaultValueFactory = _ => "2,3,5,8" };
var select = new Command("select", "How the default detector was chosen: validation AUROC on the training split only (never the test split).") { data, classes, settings };
select.SetAction(p => SelectBenchmark.Run(p.GetValue(data)!, p.GetValue(classes)!, p.GetValue(settings) ?? []));
root.Add(select);

var streamSeed = new Option<int>("--seed") { DefaultValueFactory = _ => 1 };
var coldStart = new Option<int>("--cold-start") { Description = "Learn the first model in the service from this many training images of the class instead.", DefaultValueFactory = _ => 0 };
var streamRule = new Option<string?>("--rule") { Description = "Judge:Rule for the service and the same rule offline (default: the default rule)." };
var streamClasses = new Option<string>("--classes") { DefaultValueFactory = _ => "0,1,2,3,4,5,6,7,8,9" };
var streamSettings = new Option<string[]>("--set") { Description = "A service setting for the run, Section:Key=value (repeatable), e.g. Bootstrap:LatentFits=1.", AllowMultipleArgumentsPerToken = true };
var stream = new Command("stream", "The service judging each class's test split through the folder, beside evaluate's figures for the same model.") { data, streamClasses, streamSeed, coldStart, streamRule, streamSettings };
stream.SetAction((p, ct) => StreamBenchmark.RunAsync(p.GetValue(data)!, p.GetValue(streamClasses)!, p.GetValue(streamSeed), p.GetValue(coldStart), p.GetValue(streamRule), p.GetValue(streamSettings) ?? []));
root.Add(stream);

var backlogMessages = new Option<int>("--messages") { DefaultValueFactory = _ => 20_000 };
var backlogRuns = new Option<int>("--runs") { DefaultValueFactory = _ => 10 };
var backlogArch = new Option<string>("--arch") { DefaultValueFactory = _ => "dense" };
var backlogFlood = new Option<bool>("--flood") { Description = "Publish while the service runs instead of before it starts." };
var backlogRival = new Option<bool>("--rival") { Description = "Keep a second service with the same instance name (same MQTT client ids) running." };
var backlog = new Command("backlog", "A backlog of queued MQTT messages drained by a freshly started service, repeated.") { data, backlogMessages, backlogRuns, backlogArch, backlogFlood, backlogRival };
backlog.SetAction((p, ct) => BacklogBenchmark.RunAsync(p.GetValue(data)!, p.GetValue(backlogMessages), p.GetValue(backlogRuns), p.GetValue(backlogArch)!, p.GetValue(backlogFlood), p.GetValue(backlogRival)));
root.Add(backlog);

var assetsOut = new Option<string>("--out") { DefaultValueFactory = _ => "tests/AnomalyMonitor.Tests/Assets" };
var assets = new Command("test-assets", "Write the small models the test suite loads (run from the repository root).") { assetsOut };
assets.SetAction(p => TestAssets.Run(p.GetValue(assetsOut)!));
root.Add(assets);

return await root.Parse(args).InvokeAsync();
