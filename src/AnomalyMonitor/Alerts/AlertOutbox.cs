using AnomalyMonitor.State;
using AnomalyMonitor.Samples;
using AnomalyMonitor.Telemetry;
using Microsoft.Data.Sqlite;

namespace AnomalyMonitor.Alerts;

public sealed record OutboxMessage(long Seq, string Topic, byte[] Payload, bool Retain, string Kind);

/// <summary>An alert on its way into the outbox.</summary>
public sealed record OutboxEntry(string Topic, byte[] Payload, string Kind, bool Retain = false);

/// <summary>
/// Alerts waiting to be published, on disk, so none is lost to a broker outage or a restart. An alert
/// leaves the outbox only after the broker acknowledged it (QoS 1), so delivery is at least once.
/// </summary>
public sealed class AlertOutbox : IDisposable
{
    private readonly SqliteConnection _db;
    private readonly MonitorMetrics _metrics;
    private readonly Lock _lock = new();
    private readonly SemaphoreSlim _signal = new(0);
    private long _count;

    /// <summary>The kind of a scorer's sample batches: the one kind the outbox may drop, oldest first (see <see cref="AlertsOptions.OutboxMaxSamples"/>).</summary>
    public const string SamplesKind = "samples";
    private readonly int _maxSamples;

    public AlertOutbox(Microsoft.Extensions.Options.IOptions<ServiceOptions> service, Microsoft.Extensions.Options.IOptions<AlertsOptions> alerts,
        PathResolver paths, MonitorMetrics metrics)
    {
        _metrics = metrics;
        _maxSamples = alerts.Value.OutboxMaxSamples;
        _db = Sqlite.Open(Path.Combine(paths.Resolve(service.Value.StateDirectory), "outbox.db"), service.Value.SyncEveryCommit);
        Sqlite.Execute(_db, """
            CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, payload BLOB NOT NULL, retain INTEGER NOT NULL, kind TEXT NOT NULL);
            CREATE INDEX IF NOT EXISTS outbox_kind ON outbox(kind, seq);
            CREATE TABLE IF NOT EXISTS dead_letters (seq INTEGER PRIMARY KEY, topic TEXT NOT NULL, payload BLOB NOT NULL, retain INTEGER NOT NULL, kind TEXT NOT NULL, reason TEXT NOT NULL, at TEXT NOT NULL);
            """);
        _count = Sqlite.Scalar(_db, "SELECT COUNT(*) FROM outbox");
        _metrics.OutboxSize.Set(_count);
    }

    public long Count => Interlocked.Read(ref _count);

    /// <summary>Stores alerts durably, all or none (one transaction, committed before returning), and wakes the publisher.</summary>
    public void AddRange(IReadOnlyList<OutboxEntry> entries)
    {
        if (entries.Count == 0) return;
        int dropped = 0;
        lock (_lock)
        {
            using var tx = _db.BeginTransaction();
            using var insert = _db.CreateCommand();
            insert.CommandText = "INSERT INTO outbox(topic, payload, retain, kind) VALUES ($t, $p, $r, $k)";
            var topic = insert.Parameters.Add("$t", SqliteType.Text);
            var payload = insert.Parameters.Add("$p", SqliteType.Blob);
            var retain = insert.Parameters.Add("$r", SqliteType.Integer);
            var kind = insert.Parameters.Add("$k", SqliteType.Text);
            foreach (var e in entries)
            {
                topic.Value = e.Topic;
                payload.Value = e.Payload;
                retain.Value = e.Retain ? 1 : 0;
                kind.Value = e.Kind;
                insert.ExecuteNonQuery();
            }
            if (entries.Any(e => e.Kind == SamplesKind)) dropped = DropOldestSamples();
            tx.Commit();
        }
        if (dropped > 0) _metrics.OutboxDropped.WithLabels(SamplesKind).Inc(dropped);
        _metrics.OutboxSize.Set(Interlocked.Add(ref _count, entries.Count - dropped));
        _signal.Release();
    }

    /// <summary>
    /// While the broker is away a scorer's accepted normals pile up at up to NormalStore:MaxPerSecond, gigabytes a
    /// day: beyond OutboxMaxSamples batches the oldest go (the trainer keeps only its newest samples anyway).
    /// Alerts, drift, labels and models are never dropped.
    /// </summary>
    private int DropOldestSamples()
    {
        using var delete = _db.CreateCommand();
        delete.CommandText = """
            DELETE FROM outbox WHERE kind = $k AND seq <= (SELECT seq FROM outbox WHERE kind = $k ORDER BY seq DESC LIMIT 1 OFFSET $max)
            """;
        delete.Parameters.AddWithValue("$k", SamplesKind);
        delete.Parameters.AddWithValue("$max", _maxSamples);
        return delete.ExecuteNonQuery();
    }

    /// <summary>Stores a retained message in place of any for the same topic still waiting, in one transaction.</summary>
    public void ReplaceRetained(OutboxEntry entry)
    {
        long removed;
        lock (_lock)
        {
            using var tx = _db.BeginTransaction();
            using (var delete = _db.CreateCommand())
            {
                delete.CommandText = "DELETE FROM outbox WHERE topic = $t AND retain = 1";
                delete.Parameters.AddWithValue("$t", entry.Topic);
                removed = delete.ExecuteNonQuery();
            }
            using (var insert = _db.CreateCommand())
            {
                insert.CommandText = "INSERT INTO outbox(topic, payload, retain, kind) VALUES ($t, $p, 1, $k)";
                insert.Parameters.AddWithValue("$t", entry.Topic);
                insert.Parameters.AddWithValue("$p", entry.Payload);
                insert.Parameters.AddWithValue("$k", entry.Kind);
                insert.ExecuteNonQuery();
            }
            tx.Commit();
        }
        _metrics.OutboxSize.Set(Interlocked.Add(ref _count, 1 - removed));
        _signal.Release();
    }

    public IReadOnlyList<OutboxMessage> Peek(int max) => PeekAfter(0, max);

    /// <summary>The oldest <paramref name="max"/> messages after <paramref name="seq"/>: those not yet sent on this connection.</summary>
    public IReadOnlyList<OutboxMessage> PeekAfter(long seq, int max)
    {
        lock (_lock)
        {
            using var query = _db.CreateCommand();
            query.CommandText = "SELECT seq, topic, payload, retain, kind FROM outbox WHERE seq > $after ORDER BY seq LIMIT $n";
            query.Parameters.AddWithValue("$after", seq);
            query.Parameters.AddWithValue("$n", max);
            using var reader = query.ExecuteReader();
            var list = new List<OutboxMessage>();
            while (reader.Read()) list.Add(new OutboxMessage(reader.GetInt64(0), reader.GetString(1), (byte[])reader[2], reader.GetInt64(3) == 1, reader.GetString(4)));
            return list;
        }
    }

    /// <summary>Deletes the messages the broker acknowledged, in one transaction: one commit per batch, not per alert.</summary>
    public void RemoveRange(IReadOnlyList<long> seqs)
    {
        if (seqs.Count == 0) return;
        int removed = 0;
        lock (_lock)
        {
            using var tx = _db.BeginTransaction();
            using var delete = _db.CreateCommand();
            delete.CommandText = "DELETE FROM outbox WHERE seq = $s";
            var seq = delete.Parameters.Add("$s", SqliteType.Integer);
            foreach (var s in seqs)
            {
                seq.Value = s;
                removed += delete.ExecuteNonQuery();
            }
            tx.Commit();
        }
        _metrics.OutboxSize.Set(Interlocked.Add(ref _count, -removed));
    }

    /// <summary>Moves a message the broker keeps refusing out of the queue into dead_letters, with why, in one transaction.</summary>
    public void DeadLetter(OutboxMessage message, string reason, DateTimeOffset at)
    {
        int removed;
        lock (_lock)
        {
            using var tx = _db.BeginTransaction();
            using (var keep = _db.CreateCommand())
            {
                keep.CommandText = "INSERT OR REPLACE INTO dead_letters(seq, topic, payload, retain, kind, reason, at) SELECT seq, topic, payload, retain, kind, $r, $at FROM outbox WHERE seq = $s";
                keep.Parameters.AddWithValue("$s", message.Seq);
                keep.Parameters.AddWithValue("$r", reason);
                keep.Parameters.AddWithValue("$at", at.ToString("O", System.Globalization.CultureInfo.InvariantCulture));
                keep.ExecuteNonQuery();
            }
            using (var delete = _db.CreateCommand())
            {
                delete.CommandText = "DELETE FROM outbox WHERE seq = $s";
                delete.Parameters.AddWithValue("$s", message.Seq);
                removed = delete.ExecuteNonQuery();
            }
            tx.Commit();
        }
        _metrics.OutboxSize.Set(Interlocked.Add(ref _count, -removed));
    }

    /// <summary>The messages set aside, oldest first (what an admin inspects with sqlite3 too).</summary>
    public IReadOnlyList<(OutboxMessage Message, string Reason)> DeadLetters()
    {
        lock (_lock)
        {
            using var query = _db.CreateCommand();
            query.CommandText = "SELECT seq, topic, payload, retain, kind, reason FROM dead_letters ORDER BY seq";
            using var reader = query.ExecuteReader();
            var list = new List<(OutboxMessage, string)>();
            while (reader.Read()) list.Add((new OutboxMessage(reader.GetInt64(0), reader.GetString(1), (byte[])reader[2], reader.GetInt64(3) == 1, reader.GetString(4)), reader.GetString(5)));
            return list;
        }
    }

    /// <summary>Wakes the publisher without adding anything (the status changed).</summary>
    public void Wake() => _signal.Release();

    /// <summary>Waits until something is added or the timeout passes.</summary>
    public Task<bool> WaitAsync(TimeSpan timeout, CancellationToken cancellationToken) => _signal.WaitAsync(timeout, cancellationToken);

    public void Dispose()
    {
        _db.Dispose();
        _signal.Dispose();
    }
}
