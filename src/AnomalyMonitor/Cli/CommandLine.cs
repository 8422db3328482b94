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

    /// <summary>
    /// How a parsed command line is invoked. `run` stops through its host, which handles SIGTERM and SIGINT
    /// itself and drains for up to Service:ShutdownTimeout; System.CommandLine's own handler would end the
    /// process 2 s after the signal, mid-drain, with exit code 143, so for `run` it is off. The other
    /// commands keep it: Ctrl+C cancels them.
    /// </summary>
    public static InvocationConfiguration Invocation(ParseResult parse)
    {
        var invocation = new InvocationConfiguration();
        if (parse.CommandResult.Command.Name == "run") invocation.ProcessTerminationTimeout = null;
        return invocation;
    }
}
