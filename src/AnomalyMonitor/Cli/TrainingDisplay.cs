using System.Globalization;
using AnomalyMonitor.Core.Training;
using Spectre.Console;

namespace AnomalyMonitor.Cli;

/// <summary>A live progress bar on a terminal; one plain line per epoch when the output is redirected (logs, CI).</summary>
internal static class TrainingDisplay
{
    public static T Run<T>(int epochs, Func<IProgress<EpochReport>, T> train)
    {
        if (Console.IsOutputRedirected || !AnsiConsole.Profile.Capabilities.Interactive)
            return train(new Callback(r => Console.WriteLine(Line(r, epochs))));

        T result = default!;
        AnsiConsole.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask("training", maxValue: epochs);
                result = train(new Callback(r =>
                {
                    if (r.Of > 0) task.MaxValue = r.Of;
                    task.Description = Markup.Escape(Line(r, epochs));
                    task.Value = r.Epoch;
                }));
                task.Value = task.MaxValue;
            });
        return result;
    }

    private static string Line(EpochReport r, int epochs)
    {
        var inv = CultureInfo.InvariantCulture;
        var val = r.ValidationLoss is { } v ? $" val_loss {v.ToString("0.000000", inv)}" : "";
        return $"epoch {r.Epoch}/{(r.Of > 0 ? r.Of : epochs)} step {r.Steps} loss {r.Loss.ToString("0.000000", inv)}{val} {r.Seconds.ToString("0.0", inv)}s{(r.Best ? " *" : "")}";
    }

    // Progress<T> would post to the thread pool and reorder lines; report synchronously instead.
    private sealed class Callback(Action<EpochReport> action) : IProgress<EpochReport>
    {
        public void Report(EpochReport value) => action(value);
    }
}
