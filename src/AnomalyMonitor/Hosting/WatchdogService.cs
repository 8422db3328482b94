using AnomalyMonitor.Pipeline;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Hosting.Systemd;

namespace AnomalyMonitor.Hosting;

/// <summary>
/// Feeds systemd's watchdog (WatchdogSec= in the unit) at half its interval, but only while the scoring
/// loop turns: a hung pipeline stops the pings, and systemd restarts the service.
/// </summary>
public sealed class WatchdogService(ISystemdNotifier notifier, PipelineService pipeline, TimeProvider time) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!notifier.IsEnabled || !long.TryParse(Environment.GetEnvironmentVariable("WATCHDOG_USEC"), out var usec) || usec <= 0) return;
        using var timer = new PeriodicTimer(TimeSpan.FromMicroseconds(usec / 2.0), time);
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
        {
            if (pipeline.Alive) notifier.Notify(new ServiceState("WATCHDOG=1"));
        }
    }
}
