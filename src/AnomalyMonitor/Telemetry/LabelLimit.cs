namespace AnomalyMonitor.Telemetry;

/// <summary>
/// Caps the distinct values of a metric label that comes from input (a sender's "source", a topic), so
/// that senders cannot grow /metrics and the service's memory without bound. The first values seen keep
/// their own series; later ones are counted under "other", and the first overflow is reported once.
/// </summary>
public sealed class LabelLimit(int max, Action<string>? onFirstOverflow = null)
{
    public const string Other = "other";
    /// <summary>Longer values are cut: a label value is a name, not a payload.</summary>
    public const int MaxLength = 120;

    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, byte> _values = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();
    private bool _overflowed;

    public int Max => max;

    public int Count => _values.Count;

    public string Of(string value)
    {
        if (value.Length > MaxLength) value = value[..MaxLength];
        if (_values.ContainsKey(value)) return value;
        bool first;
        lock (_lock)
        {
            if (_values.ContainsKey(value)) return value;
            if (_values.Count < max)
            {
                _values[value] = 0;
                return value;
            }
            first = !_overflowed;
            _overflowed = true;
        }
        if (first) onFirstOverflow?.Invoke(value);
        return Other;
    }
}
