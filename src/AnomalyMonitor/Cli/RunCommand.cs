using AnomalyMonitor.Hosting;
using System.CommandLine;
using AnomalyMonitor.Core.Runtime;
using AnomalyMonitor.Core.Storage;

namespace AnomalyMonitor.Cli;

internal static class RunCommand
{
    public static Command Create()
    {
        var config = new Option<string?>("--config") { Description = "A JSON file that overrides appsettings.json and ANOMALYMONITOR__ environment variables." };
        var command = new Command("run", "Run the service: watch the folder and MQTT topics, judge images, publish alerts and metrics.") { config };
        command.SetAction(async (parse, ct) =>
        {
            var file = parse.GetValue(config);
            if (file is not null && !File.Exists(file))
            {
                await Console.Error.WriteLineAsync($"error: configuration file '{file}' does not exist.").ConfigureAwait(false);
                return ExitCodes.Error;
            }
            try
            {
                await using var app = ServiceHost.Build(file);
                await app.RunAsync().ConfigureAwait(false);
                return ExitCodes.Ok;
            }
            catch (Exception e) when (ServiceHost.ConfigurationProblems(e) is { Count: > 0 } problems)
            {
                await Console.Error.WriteLineAsync($"error: the configuration has {problems.Count} problem(s):").ConfigureAwait(false);
                foreach (var p in problems) await Console.Error.WriteLineAsync($"  - {p}").ConfigureAwait(false);
                return ExitCodes.Error;
            }
            catch (Exception e) when (e is TorchUnavailableException or ModelLoadException)
            {
                await Console.Error.WriteLineAsync($"error: {e.Message}").ConfigureAwait(false);
                return ExitCodes.ModelUnavailable;
            }
            catch (IOException e)
            {
                await Console.Error.WriteLineAsync($"error: {e.Message}").ConfigureAwait(false);
                return ExitCodes.Error;
            }
        });
        return command;
    }
}
