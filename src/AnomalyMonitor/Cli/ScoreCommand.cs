using System.CommandLine;
using System.Globalization;
using AnomalyMonitor.Core.Data;
using AnomalyMonitor.Core.Evaluation;
using AnomalyMonitor.Core.Imaging;
using AnomalyMonitor.Core.Runtime;
using AnomalyMonitor.Core.Storage;

namespace AnomalyMonitor.Cli;

internal static class ScoreCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Model directory written by `train`.", Required = true };
        var files = new Argument<string[]>("files") { Description = "Images (PNG/JPEG/BMP) or batch files (IDX, .npy, .npz); each image in a batch file is scored as file#index.", Arity = ArgumentArity.OneOrMore };
        var device = CommonOptions.Device();
        var maxBytes = CommonOptions.MaxBytes();
        var noResize = CommonOptions.NoResize();

        var command = new Command("score", "Print each image's reconstruction error, z-score and verdict.") { model, files, device, maxBytes, noResize };
        command.SetAction((parse, ct) => CliRunner.RunAsync(token =>
        {
            var (torchDevice, _) = TorchRuntime.ResolveDevice(parse.GetValue(device)!);
            using var loaded = ModelFiles.Load(parse.GetValue(model)!, torchDevice);
            var limits = CommonOptions.Limits(parse.GetValue(maxBytes), parse.GetValue(noResize));
            var rejected = new List<InputRejectedException>();
            var inv = CultureInfo.InvariantCulture;
            Console.WriteLine("item\terror\tz\tverdict");
            foreach (var file in parse.GetValue(files)!)
            {
                token.ThrowIfCancellationRequested();
                try
                {
                    var load = DatasetLoader.Load(file, new DatasetOptions { Shape = loaded.Shape, Limits = limits });
                    rejected.AddRange(load.Rejected);
                    var report = Evaluator.Run(loaded, load.Images, normalLabel: null, cancellationToken: token);
                    for (int i = 0; i < report.Total; i++)
                    {
                        var j = report.Judgements[i];
                        string id = load.Images.Count == 1 ? file : $"{file}#{load.Images.Ids[i].Split('#').Last()}";
                        Console.WriteLine($"{id}\t{report.Errors[i].ToString("G6", inv)}\t{j.ZScore.ToString("0.00", inv)}\t{(j.IsAnomaly ? "anomaly" : "normal")}");
                    }
                }
                catch (InputRejectedException e)
                {
                    rejected.Add(e);
                }
                catch (FileNotFoundException e)
                {
                    rejected.Add(new InputRejectedException(file, RejectReason.Unsupported, e.Message));
                }
            }
            CliRunner.ReportRejected(rejected);
            return rejected.Count > 0 ? ExitCodes.SomeInputsRejected : ExitCodes.Ok;
        }, ct));
        return command;
    }
}
