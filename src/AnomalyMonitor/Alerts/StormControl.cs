using Microsoft.Extensions.Options;

namespace AnomalyMonitor.Alerts;

/// <summary>
/// Decides which anomalies become alerts: a cooldown per source, a cap per minute, and none while a
/// sustained shift is reported. What it holds back is counted, and the count rides on the next alert.
/// Called from the sink stage only (one thread).
/// </summary>
public sealed class StormControl(IOptions<AlertsOptions> options, TimeProvider time)
{
    private readonly Dictionary<string, DateTimeOffset> _lastBySource = new(StringComparer.Ordinal);
    private readonly Queue<DateTimeOffset> _lastMinute = new();
    private long _suppressed;

    /// <summary>Null when the alert may go out (and it is then counted against the limits); otherwise the reason it is held back.</summary>
    public string? Suppress(string source, bool driftActive)
    {
        var o = options.Value;
        var now = time.GetUtcNow();
        string? reason = null;
        if (driftActive) reason = "drift";
        else if (o.Cooldown > TimeSpan.Zero && _lastBySource.TryGetValue(source, out var last) && now - last < o.Cooldown) reason = "cooldown";
        else
        {
            while (_lastMinute.Count > 0 && now - _lastMinute.Peek() >= TimeSpan.FromMinutes(1)) _lastMinute.Dequeue();
            if (_lastMinute.Count >= o.MaxPerMinute) reason = "rate_limit";
        }
        if (reason is not null)
        {
            _suppressed++;
            return reason;
        }
        // Bounded like the metric labels: a sender inventing sources must not grow this map for ever.
        if (_lastBySource.Count >= 10_000) _lastBySource.Clear();
        _lastBySource[source] = now;
        _lastMinute.Enqueue(now);
        return null;
    }

    /// <summary>Anomalies held back since the last alert that went out; resets the count.</summary>
    public long TakeSuppressed()
    {
        var n = _suppressed;
        _suppressed = 0;
        return n;
    }
}
