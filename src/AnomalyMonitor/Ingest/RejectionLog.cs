using AnomalyMonitor.Core.Imaging;
using AnomalyMonitor.Telemetry;
using Microsoft.Extensions.Logging;

namespace AnomalyMonitor.Ingest;

/// <summary>
/// Logs refusals one line each up to a burst per window, then counts the rest and logs them as one line when
/// the window ends. A camera sending garbage, or one message of 100,000 bad elements, would otherwise write a
/// warning per image, and journald, past its own rate limit, would drop lines at random, the useful first
/// ones among them. Every refusal is still counted in anomaly_monitor_rejected_total and kept with its
/// reason (rejected/, state/quarantine). Thread-safe: decode workers and sources refuse concurrently.
/// </summary>
public sealed class RejectionLog(ILogger logger, TimeProvider time, int burst = 20, TimeSpan? window = null)
{
    private readonly TimeSpan _window = window ?? TimeSpan.FromSeconds(10);
    private readonly Lock _lock = new();
    private readonly SortedDictionary<string, long> _held = new(StringComparer.Ordinal);
    private DateTimeOffset _windowStart = DateTimeOffset.MinValue;
    private int _logged;
    private long _heldCount;
    private string? _firstHeld;
    private ITimer? _flush;

    public void Rejected(string item, string source, RejectReason reason, string detail)
    {
        lock (_lock)
        {
            var now = time.GetUtcNow();
            if (now - _windowStart >= _window) StartWindow(now);
            if (_logged >= burst)
            {
                _heldCount++;
                _held[reason.Name()] = _held.GetValueOrDefault(reason.Name()) + 1;
                _firstHeld ??= item;
                // The summary comes when the window ends, even if the flood stopped and no refusal follows.
                _flush ??= time.CreateTimer(_ => Flush(), null, _windowStart + _window - now, Timeout.InfiniteTimeSpan);
                return;
            }
            _logged++;
        }
        Log.Rejected(logger, item, source, reason.Name(), detail);
    }

    /// <summary>Logs what the window held back, if it has ended (the timer's call; a test's too).</summary>
    public void Flush()
    {
        lock (_lock)
        {
            var now = time.GetUtcNow();
            if (now - _windowStart >= _window) StartWindow(now);
        }
    }

    private void StartWindow(DateTimeOffset now)
    {
        if (_heldCount > 0)
            Log.RejectionsHeldBack(logger, _heldCount, _window.TotalSeconds, string.Join(", ", _held.Select(r => $"{r.Key} {r.Value}")), _firstHeld!);
        (_windowStart, _logged, _heldCount, _firstHeld) = (now, 0, 0, null);
        _held.Clear();
        _flush?.Dispose();
        _flush = null;
    }
}
