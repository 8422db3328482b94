using AnomalyMonitor.Pipeline;
using AnomalyMonitor.Telemetry;
using Microsoft.Extensions.Logging;

namespace AnomalyMonitor.Registry;

/// <summary>
/// Makes a saved version the one that judges: check it loads, switch "current", hand it to the scoring
/// loop (which swaps it in between batches, with a fresh threshold from the version's own calibration).
/// Used by the retraining gate and by operator rollbacks.
/// </summary>
public sealed class Promotion(
    ModelRegistry registry, ModelHolder holder, Microsoft.Extensions.Options.IOptions<Fleet.FleetOptions> fleet, TimeProvider time, MonitorMetrics metrics, ILogger<Promotion> logger)
{
    private readonly Lock _lock = new();

    public void Promote(int version)
    {
        lock (_lock)
        {
            var model = registry.Load(version, holder.Device); // fails on a damaged version before "current" changes
            try
            {
                holder.CheckJudges(model); // and on one whose files load but cannot judge
                registry.SetCurrent(version);
            }
            catch
            {
                model.Dispose();
                throw;
            }
            holder.Offer(model);
            metrics.LastPromotion.Set(time.GetUtcNow().ToUnixTimeSeconds());
            holder.MarkFallback(false);
        }
    }

    /// <summary>
    /// Promotes <paramref name="version"/> only if <paramref name="parent"/>, the version it was gated against,
    /// is still current: an operator's rollback (or a fleet model) during the run is not undone by its end.
    /// </summary>
    public bool PromoteIfCurrent(int version, int parent)
    {
        lock (_lock)
        {
            if (registry.CurrentVersion() != parent) return false;
            Promote(version);
            return true;
        }
    }

    /// <summary>Re-promotes an earlier version; throws <see cref="ArgumentException"/> for a version that is not in the registry.</summary>
    public void Rollback(int version)
    {
        if (fleet.Value.IsScorer)
            throw new ArgumentException("This instance is a fleet scorer: roll back on the trainer, which publishes the version to every scorer.");
        if (!Directory.Exists(registry.PathOf(version)))
            throw new ArgumentException($"There is no version v{version} in {registry.Root}; `anomaly-monitor models list` shows the versions kept.");
        int previous = holder.Version;
        Promote(version);
        metrics.Rollbacks.Inc();
        Log.RolledBack(logger, version, previous);
    }
}
