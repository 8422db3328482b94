using System.CommandLine;
using System.CommandLine.Help;

namespace AnomalyMonitor.Cli;

/// <summary>The `anomaly-monitor` command tree.</summary>
public static class CommandLine
{
    public static RootCommand Build()
    {
        var root = new RootCommand("anomaly-monitor: find anomalous images by autoencoder reconstruction error.")
        {
            TrainCommand.Create(),
            EvaluateCommand.Create(),
            ScoreCommand.Create(),
            RunCommand.Create(),
            ExportCommand.Create(),
            RetrainCommand.Create(),
            ModelsCommand.Create(),
        };
        // With no subcommand, show help rather than an error: it is what a newcomer types first.
        root.SetAction(parseResult => new HelpAction().Invoke(parseResult));
        return root;
    }
}
