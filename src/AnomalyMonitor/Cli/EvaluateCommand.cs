using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using AnomalyMonitor.Core.Data;
using AnomalyMonitor.Core.Evaluation;
using AnomalyMonitor.Core.Runtime;
using AnomalyMonitor.Core.Storage;
using AnomalyMonitor.Core.Thresholds;
using AnomalyMonitor.Plots;

namespace AnomalyMonitor.Cli;

internal static class EvaluateCommand
{
    private static readonly JsonSerializerOptions JsonOut = new() { WriteIndented = true };

    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Model directory written by `train`.", Required = true };
        var data = CommonOptions.Data();
        var normalClass = CommonOptions.NormalClass("The normal class; every other label counts as an anomaly (default: the class the model was trained on).");
        var split = CommonOptions.Split();
        var limit = CommonOptions.Limit();
        var threshold = new Option<string?>("--threshold") { Description = "Override the model's threshold rule, e.g. percentile:p=99 or mean-ksigma:k=3,linear." };
        var json = new Option<bool>("--json") { Description = "Print one JSON object (threshold, flagged, total, accuracy, precision, recall, f1, auroc, aupr, confusion)." };
        var replay = new Option<bool>("--replay")
        {
            Description = "Also judge the images in their order as the service does: a rolling window with the Judge defaults, learning from what it accepts.",
        };
        var plots = new Option<string?>("--plots") { Description = "Write PNG figures to this directory: reconstructions, error histogram, loss curves." };
        var batchSize = CommonOptions.BatchSize(64, "Images per scoring batch.");
        var device = CommonOptions.Device();
        var maxBytes = CommonOptions.MaxBytes();

        var command = new Command("evaluate", "Score labelled data and report how well the model separates anomalies.")
        {
            model, data, normalClass, split, limit, threshold, json, replay, plots, batchSize, device, maxBytes,
        };
        command.SetAction((parse, ct) => CliRunner.RunAsync(token =>
        {
            var (torchDevice, deviceNote) = TorchRuntime.ResolveDevice(parse.GetValue(device)!);
            using var loaded = ModelFiles.Load(parse.GetValue(model)!, torchDevice);
            var load = DatasetLoader.Load(parse.GetValue(data)!, new DatasetOptions
            {
                Split = parse.GetValue(split) ?? DatasetSplit.Test,
                Shape = loaded.Shape,
                Limit = parse.GetValue(limit),
                Limits = CommonOptions.Limits(parse.GetValue(maxBytes), noResize: false),
            });
            CliRunner.ReportRejected(load.Rejected);
            if (load.Images.Count == 0) throw new ArgumentException($"{load.Description} holds no usable image.");

            var normalText = parse.GetValue(normalClass) ?? loaded.Manifest.Data.NormalClass;
            int? normal = normalText is null ? null : load.Images.ResolveClass(normalText);
            var policy = parse.GetValue(threshold) is { } t ? ThresholdPolicy.Parse(t) : loaded.Threshold;
            var report = Evaluator.Run(loaded, load.Images, normal, policy, parse.GetValue(batchSize), token);

            if (parse.GetValue(plots) is { } plotDir)
            {
                var files = EvaluationPlots.WriteAll(plotDir, loaded, load.Images, report);
                foreach (var f in files) Console.Error.WriteLine($"plot: {f}");
            }
            var judge = new JudgeSettings(); // the service's Judge:* defaults
            var replayed = parse.GetValue(replay) ? Replay.Run(report, loaded.Manifest.Calibration, judge) : null;
            if (parse.GetValue(json))
            {
                var fields = ToJson(report);
                if (replayed is not null) fields["replay"] = ToJson(replayed);
                Console.WriteLine(JsonSerializer.Serialize(fields, JsonOut));
            }
            else
            {
                PrintText(report, deviceNote, load.Description, normalText);
                if (replayed is not null) PrintReplay(replayed, judge);
            }
            return load.Rejected.Count > 0 ? ExitCodes.SomeInputsRejected : ExitCodes.Ok;
        }, ct));
        return command;
    }

    /// <summary>The field names here are a contract: scripts read them.</summary>
    private static Dictionary<string, object?> ToJson(EvaluationReport r)
    {
        var m = r.Metrics;
        return new Dictionary<string, object?>
        {
            ["threshold"] = r.Threshold,
            ["thresholdRule"] = r.Policy.ToString(),
            ["flagged"] = r.Flagged,
            ["total"] = r.Total,
            ["accuracy"] = m?.Accuracy,
            ["precision"] = m?.Precision,
            ["recall"] = m?.Recall,
            ["f1"] = m?.F1,
            ["auroc"] = Finite(m?.Auroc),
            ["aupr"] = Finite(m?.Aupr),
            ["confusion"] = m is null ? null : new Dictionary<string, int>
            {
                ["tp"] = m.Confusion.TruePositive,
                ["fp"] = m.Confusion.FalsePositive,
                ["tn"] = m.Confusion.TrueNegative,
                ["fn"] = m.Confusion.FalseNegative,
            },
        };
    }

    private static Dictionary<string, object?> ToJson(ReplayReport r) => new()
    {
        ["flagged"] = r.Flagged,
        ["total"] = r.Total,
        ["falseAlarmRate"] = Finite(r.FalseAlarmRate),
        ["recall"] = Finite(r.Recall),
        ["finalThreshold"] = r.FinalThreshold,
        ["window"] = r.WindowCount,
    };

    private static void PrintReplay(ReplayReport r, JudgeSettings defaults)
    {
        var inv = CultureInfo.InvariantCulture;
        Console.WriteLine();
        Console.WriteLine($"replayed in order through the service's rolling judge (window {defaults.Window}, min {defaults.MinWindow}, calibration weight {defaults.CalibrationWeight.ToString(inv)}, {(defaults.Floor ? "never below the calibration's threshold" : "free both ways")}):");
        Console.WriteLine($"  flagged:      {r.Flagged} / {r.Total}");
        if (r.Normals > 0) Console.WriteLine($"  false alarms: {r.NormalsFlagged} / {r.Normals} ({(100 * r.FalseAlarmRate).ToString("0.00", inv)}%)");
        if (r.Anomalies > 0) Console.WriteLine($"  recall:       {r.AnomaliesFlagged} / {r.Anomalies} ({(100 * r.Recall).ToString("0.0", inv)}%)");
        Console.WriteLine($"  threshold at the end: {r.FinalThreshold.ToString("G6", inv)} (window of {r.WindowCount} accepted scores)");
    }

    private static double? Finite(double? v) => v is { } x && double.IsFinite(x) ? x : null;

    private static void PrintText(EvaluationReport r, string deviceNote, string data, string? normal)
    {
        var inv = CultureInfo.InvariantCulture;
        Console.WriteLine($"device:    {deviceNote}");
        Console.WriteLine($"data:      {data}{(normal is null ? "" : $" (normal class {normal})")}");
        Console.WriteLine($"threshold: {r.Threshold.ToString("G6", inv)} ({r.Policy})");
        Console.WriteLine($"flagged:   {r.Flagged} / {r.Total}");
        if (r.Metrics is not { } m)
        {
            Console.WriteLine("(no labels, or no --normal-class: metrics need to know which images are normal)");
            return;
        }
        var c = m.Confusion;
        Console.WriteLine();
        Console.WriteLine("                   flagged   passed");
        Console.WriteLine($"  anomaly (true)  {c.TruePositive,8} {c.FalseNegative,8}");
        Console.WriteLine($"  normal  (true)  {c.FalsePositive,8} {c.TrueNegative,8}");
        Console.WriteLine();
        Console.WriteLine($"accuracy:  {m.Accuracy.ToString("0.0000", inv)}");
        Console.WriteLine($"precision: {m.Precision.ToString("0.0000", inv)}");
        Console.WriteLine($"recall:    {m.Recall.ToString("0.0000", inv)}");
        Console.WriteLine($"f1:        {m.F1.ToString("0.0000", inv)}");
        Console.WriteLine($"auroc:     {m.Auroc.ToString("0.0000", inv)}");
        Console.WriteLine($"aupr:      {m.Aupr.ToString("0.0000", inv)}");
    }
}
