namespace AnomalyMonitor.Telemetry;

/// <summary>
/// Counts a repeated event and says when to log it: the first time, then at most once per interval, with
/// the number of events since the last report. For events that come hundreds a second in a flood.
/// Not thread-safe: one owner (a sink runs on the sink stage's thread).
/// </summary>
public sealed class ReportThrottle(TimeSpan interval, TimeProvider time)
{
    private DateTimeOffset _last = DateTimeOffset.MinValue;
    private long _count;

    /// <summary>Counts one event; true, with the events since the last report (this one included), when a report is due.</summary>
    public bool Count(out long since)
    {
        _count++;
        var now = time.GetUtcNow();
        if (_last != DateTimeOffset.MinValue && now - _last < interval)
        {
            since = 0;
            return false;
        }
        (since, _count, _last) = (_count, 0, now);
        return true;
    }
}
