using System.Collections.Concurrent;
using AnomalyMonitor.Telemetry;
using Microsoft.Extensions.Logging;

namespace AnomalyMonitor.State;

/// <summary>
/// Which durable stores (alert outbox, sample store, judge state, quarantine) cannot write right now, and
/// why. A failing store makes /readyz answer 503, sets anomaly_monitor_storage_degraded{store} and turns
/// the retained status message to "degraded"; the first write that succeeds again clears it.
/// </summary>
public sealed class StorageHealth(MonitorMetrics metrics, ILogger<StorageHealth> logger)
{
    private readonly ConcurrentDictionary<string, string> _problems = new(StringComparer.Ordinal);

    /// <summary>Raised when a store becomes degraded or recovers (not on every repeated failure).</summary>
    public event Action? Changed;

    public bool Degraded => !_problems.IsEmpty;

    /// <summary>Store name to the last error, for /readyz, /api/status and the status topic.</summary>
    public IReadOnlyDictionary<string, string> Problems => new SortedDictionary<string, string>(_problems, StringComparer.Ordinal);

    public void Failed(string store, Exception error)
    {
        metrics.StorageErrors.WithLabels(store).Inc();
        bool first = _problems.TryAdd(store, error.Message);
        if (!first)
        {
            _problems[store] = error.Message;
            return;
        }
        metrics.StorageDegraded.WithLabels(store).Set(1);
        Log.StorageDegraded(logger, store, error.Message);
        Changed?.Invoke();
    }

    public void Recovered(string store)
    {
        if (!_problems.TryRemove(store, out _)) return;
        metrics.StorageDegraded.WithLabels(store).Set(0);
        Log.StorageRecovered(logger, store);
        Changed?.Invoke();
    }
}
