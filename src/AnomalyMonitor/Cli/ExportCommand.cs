using System.CommandLine;
using AnomalyMonitor.Core.Data;
using AnomalyMonitor.Core.Imaging;

namespace AnomalyMonitor.Cli;

/// <summary>Writes images from any supported data set as PNG files: to look at data, or to feed the service.</summary>
internal static class ExportCommand
{
    public static Command Create()
    {
        var data = CommonOptions.Data();
        var output = new Option<string>("--out") { Description = "Directory to write PNG files to.", Required = true };
        var cls = CommonOptions.NormalClass("Export only this class (a label number or class-folder name).");
        cls.Aliases.Add("--class");
        var split = CommonOptions.Split();
        var count = new Option<int>("--count") { Description = "How many images to write.", DefaultValueFactory = _ => 10 };
        var command = new Command("export", "Write images from an IDX, npy/npz or image-folder data set as PNG files.") { data, output, cls, split, count };
        command.SetAction((parse, ct) => CliRunner.RunAsync(_ =>
        {
            var load = DatasetLoader.Load(parse.GetValue(data)!, new DatasetOptions
            {
                Split = parse.GetValue(split) ?? DatasetSplit.Test,
                OnlyClass = parse.GetValue(cls),
                Limit = parse.GetValue(count),
            });
            CliRunner.ReportRejected(load.Rejected);
            var dir = parse.GetValue(output)!;
            Directory.CreateDirectory(dir);
            var images = load.Images;
            for (int i = 0; i < images.Count; i++)
            {
                var label = images.Labels[i] == ImageSet.NoLabel ? "" : $"-class{images.Labels[i]}";
                var path = Path.Combine(dir, $"{i:D5}{label}.png");
                File.WriteAllBytes(path, ImageEncoder.EncodePng(images.Image(i), images.Shape));
                Console.WriteLine(path);
            }
            return load.Rejected.Count > 0 ? ExitCodes.SomeInputsRejected : ExitCodes.Ok;
        }, ct));
        return command;
    }
}
