namespace AnomalyMonitor.Core.Thresholds;

/// <summary>The saved form of a <see cref="RollingStatistics"/>: its capacity and its values, oldest first.</summary>
public sealed record RollingState(int Capacity, double[] Values);

/// <summary>
/// Mean and σ of the last N values, updated in O(1) per value. Uses Welford's update for the sliding
/// window and recomputes exactly from the buffer once per turnover, so rounding error cannot build up
/// over millions of updates (amortised O(1)).
/// </summary>
public sealed class RollingStatistics
{
    private readonly double[] _buffer;
    private int _next;
    private int _count;
    private double _mean;
    private double _m2;
    private int _sinceExact;

    public RollingStatistics(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 2);
        _buffer = new double[capacity];
    }

    public int Capacity => _buffer.Length;
    public int Count => _count;
    public double Mean => _count == 0 ? double.NaN : _mean;
    public double Std => _count == 0 ? double.NaN : Math.Sqrt(Math.Max(0, _m2) / _count);

    public void Add(double value)
    {
        if (!double.IsFinite(value)) return; // one broken score must not poison the window
        if (_count < _buffer.Length)
        {
            _buffer[_next] = value;
            _count++;
            double delta = value - _mean;
            _mean += delta / _count;
            _m2 += delta * (value - _mean);
        }
        else
        {
            double old = _buffer[_next];
            _buffer[_next] = value;
            double oldMean = _mean;
            _mean += (value - old) / _count;
            _m2 += (value - old) * (value - _mean + old - oldMean);
        }
        _next = (_next + 1) % _buffer.Length;
        if (++_sinceExact >= _buffer.Length) Recompute();
    }

    public void Clear()
    {
        _next = _count = _sinceExact = 0;
        _mean = _m2 = 0;
    }

    public RollingState Save()
    {
        var values = new double[_count];
        int start = _count < _buffer.Length ? 0 : _next;
        for (int i = 0; i < _count; i++) values[i] = _buffer[(start + i) % _buffer.Length];
        return new RollingState(_buffer.Length, values);
    }

    /// <summary>Restores saved values; if the capacity changed, the newest values that fit are kept.</summary>
    public void Restore(RollingState state)
    {
        Clear();
        foreach (var v in state.Values.Skip(Math.Max(0, state.Values.Length - _buffer.Length))) Add(v);
        Recompute();
    }

    private void Recompute()
    {
        _sinceExact = 0;
        if (_count == 0) return;
        var (mean, std) = Statistics.MeanStd(_buffer.AsSpan(0, _count));
        _mean = mean;
        _m2 = std * std * _count;
    }
}
