using AnomalyMonitor.Core.Imaging;
using AnomalyMonitor.Core.Runtime;
using AnomalyMonitor.Core.Storage;
using AnomalyMonitor.Core.Training;

namespace AnomalyMonitor.Cli;

/// <summary>Runs a command's work off the console thread and turns known failures into one line on stderr and an exit code.</summary>
internal static class CliRunner
{
    public static async Task<int> RunAsync(Func<CancellationToken, int> work, CancellationToken cancellationToken)
    {
        try
        {
            return await Task.Run(() => work(cancellationToken), cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            await Console.Error.WriteLineAsync("cancelled").ConfigureAwait(false);
            return ExitCodes.Cancelled;
        }
        catch (Exception e) when (e is TorchUnavailableException or ModelLoadException)
        {
            await Console.Error.WriteLineAsync($"error: {e.Message}").ConfigureAwait(false);
            return ExitCodes.ModelUnavailable;
        }
        catch (Exception e) when (e is ArgumentException or FormatException or IOException or UnauthorizedAccessException
            or InputRejectedException or TrainingDivergedException or InvalidOperationException)
        {
            await Console.Error.WriteLineAsync($"error: {e.Message}").ConfigureAwait(false);
            return ExitCodes.Error;
        }
    }

    /// <summary>Names every rejected input on stderr, then a count by reason.</summary>
    public static void ReportRejected(IReadOnlyCollection<InputRejectedException> rejected, TextWriter? writer = null)
    {
        writer ??= Console.Error;
        if (rejected.Count == 0) return;
        foreach (var r in rejected.Take(20)) writer.WriteLine($"rejected: {r.Message}");
        if (rejected.Count > 20) writer.WriteLine($"rejected: … and {rejected.Count - 20} more");
        var byReason = string.Join(", ", rejected.GroupBy(r => r.Reason).Select(g => $"{g.Count()} {g.Key.Name()}"));
        writer.WriteLine($"skipped {rejected.Count} input(s): {byReason}");
    }
}
