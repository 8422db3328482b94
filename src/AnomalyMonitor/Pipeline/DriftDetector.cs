
namespace AnomalyMonitor.Pipeline;

/// <summary>
/// Notices a level shift: the share of anomalous items, over a trailing window, stays above a fraction
/// for longer than a duration. That is reported once, not as thousands of anomaly alerts. It ends when
/// the share stays below the fraction as long, or when a new model starts judging (the scoring loop
/// clears it then: the old model's share says nothing about the new one's).
/// </summary>
public sealed class DriftDetector(DriftOptions options, TimeProvider time)
{
    private readonly Queue<(DateTimeOffset At, bool Anomaly)> _recent = new();
    private int _anomalies;
    private DateTimeOffset? _conditionSince;

    public bool Active { get; private set; }
    public double Fraction => _recent.Count == 0 ? 0 : (double)_anomalies / _recent.Count;
    public int Count => _recent.Count;

    /// <summary>The trailing window the share is taken over: the duration, at most a minute.</summary>
    private TimeSpan Window => options.Duration < TimeSpan.FromMinutes(1) ? options.Duration : TimeSpan.FromMinutes(1);

    /// <summary>Records a verdict; returns +1 when a shift starts, -1 when it ends by itself, 0 otherwise.</summary>
    public int Observe(bool anomaly)
    {
        var now = time.GetUtcNow();
        _recent.Enqueue((now, anomaly));
        if (anomaly) _anomalies++;
        while (_recent.Count > 0 && now - _recent.Peek().At > Window)
        {
            if (_recent.Dequeue().Anomaly) _anomalies--;
        }

        bool shifted = _recent.Count >= options.MinItems && Fraction > options.Fraction;
        bool condition = Active ? !shifted : shifted; // what would change the state
        if (!condition)
        {
            _conditionSince = null;
            return 0;
        }
        _conditionSince ??= now;
        if (now - _conditionSince.Value < options.Duration) return 0;
        _conditionSince = null;
        Active = !Active;
        return Active ? 1 : -1;
    }

    public void Clear()
    {
        Active = false;
        _conditionSince = null;
        _recent.Clear();
        _anomalies = 0;
    }
}
