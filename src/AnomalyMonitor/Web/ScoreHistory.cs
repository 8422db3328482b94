namespace AnomalyMonitor.Web;

/// <summary>One judged item, as the web page's chart draws it.</summary>
public readonly record struct ScorePoint(DateTimeOffset At, double Score, double Threshold, bool Anomaly, int ModelVersion);

/// <summary>The last few hundred scores with the threshold they were judged against, for the live chart.</summary>
public sealed class ScoreHistory(int capacity = 600)
{
    private readonly ScorePoint[] _points = new ScorePoint[capacity];
    private readonly Lock _lock = new();
    private long _written;

    public void Add(ScorePoint point)
    {
        lock (_lock) _points[_written++ % _points.Length] = point;
    }

    /// <summary>Oldest first.</summary>
    public IReadOnlyList<ScorePoint> Snapshot()
    {
        lock (_lock)
        {
            int n = (int)Math.Min(_written, _points.Length);
            var list = new ScorePoint[n];
            for (int i = 0; i < n; i++) list[i] = _points[(_written - n + i) % _points.Length];
            return list;
        }
    }
}

/// <summary>Feeds the page's live chart.</summary>
internal sealed class ScoreHistorySink(ScoreHistory history) : AnomalyMonitor.Sinks.IVerdictSink
{
    public bool Durable => false;

    public ValueTask WriteAsync(AnomalyMonitor.Pipeline.JudgedBatch batch, CancellationToken cancellationToken)
    {
        for (int i = 0; i < batch.Count; i++)
        {
            var j = batch.Verdicts[i].Judgement;
            history.Add(new ScorePoint(batch.JudgedAt, j.Score, j.Threshold, j.IsAnomaly, batch.ModelVersion));
        }
        return ValueTask.CompletedTask;
    }
}
