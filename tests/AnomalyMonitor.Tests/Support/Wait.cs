namespace AnomalyMonitor.Tests.Support;

/// <summary>Polls a condition that real components reach asynchronously; fails with a message when they do not.</summary>
public static class Wait
{
    public static async Task UntilAsync(Func<bool> condition, string what, int seconds = 60)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed.TotalSeconds > seconds) throw new TimeoutException($"Timed out after {seconds} s waiting for: {what}");
            await Task.Delay(50);
        }
    }

    /// <summary>The same for a condition that must ask over the network (a child process's /api/status).</summary>
    public static async Task UntilAsync(Func<Task<bool>> condition, string what, int seconds = 90)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (!await condition())
        {
            if (clock.Elapsed.TotalSeconds > seconds) throw new TimeoutException($"Timed out after {seconds} s waiting for: {what}");
            await Task.Delay(100);
        }
    }
}
