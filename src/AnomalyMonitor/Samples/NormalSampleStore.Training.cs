using AnomalyMonitor.State;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using AnomalyMonitor.Core.Data;
using AnomalyMonitor.Core.Imaging;

namespace AnomalyMonitor.Samples;

/// <summary>What a retraining run trains on: images, their provenance, and where the store stood.</summary>
public sealed record TrainingSnapshot(ImageSet Images, long[] Seqs, long HighWater, string Fingerprint, int Excluded, string Description);

/// <summary>Operator labels: "normal" (a false alarm) or "anomaly" (confirmed; kept with its pixels for the gate).</summary>
public enum FeedbackLabel { Normal, Anomaly }

public sealed partial class NormalSampleStore
{
    /// <summary>The newest sample's sequence number, recorded by the last retraining run ("new samples" are those after it).</summary>
    public long HighWater
    {
        get
        {
            lock (_lock)
            {
                using var query = Command("SELECT value FROM meta WHERE key='retrain_high_water'");
                return query.ExecuteScalar() is string v ? long.Parse(v, CultureInfo.InvariantCulture) : 0;
            }
        }
        set
        {
            lock (_lock)
            {
                using var upsert = Command("INSERT INTO meta(key, value) VALUES ('retrain_high_water', $v) ON CONFLICT(key) DO UPDATE SET value=$v",
                    ("$v", value.ToString(CultureInfo.InvariantCulture)));
                upsert.ExecuteNonQuery();
            }
        }
    }

    /// <summary>Samples by source: on a fleet trainer, "&lt;instance&gt;/&lt;source&gt;" shows which scorer sent what.</summary>
    public IReadOnlyDictionary<string, long> CountBySource()
    {
        lock (_lock)
        {
            using var query = Command("SELECT source, COUNT(*) FROM samples GROUP BY source ORDER BY source");
            using var reader = query.ExecuteReader();
            var counts = new Dictionary<string, long>(StringComparer.Ordinal);
            while (reader.Read()) counts[reader.GetString(0)] = reader.GetInt64(1);
            return counts;
        }
    }

    /// <summary>Every stored sample's item id, oldest first (on a fleet trainer, "&lt;instance&gt;:&lt;id&gt;").</summary>
    public IReadOnlyList<string> ItemIds()
    {
        lock (_lock)
        {
            using var query = Command("SELECT item_id FROM samples ORDER BY seq");
            using var reader = query.ExecuteReader();
            var ids = new List<string>();
            while (reader.Read()) ids.Add(reader.GetString(0));
            return ids;
        }
    }

    public long CountSince(long seq)
    {
        lock (_lock)
        {
            using var query = Command("SELECT COUNT(*) FROM samples WHERE seq > $s", ("$s", seq));
            return (long)query.ExecuteScalar()!;
        }
    }

    /// <summary>
    /// Samples of <paramref name="shape"/> received before <paramref name="receivedBefore"/>, without any item an
    /// operator confirmed as an anomaly. The fingerprint hashes the sequence numbers and item ids, in order.
    /// </summary>
    public TrainingSnapshot Snapshot(ImageShape shape, DateTimeOffset receivedBefore)
    {
        var seqs = new List<long>();
        var ids = new List<string>();
        var pixels = new List<float>();
        int excluded;
        lock (_lock)
        {
            using (var query = Command("""
                SELECT s.seq, s.item_id, s.pixels FROM samples s
                WHERE s.channels=$c AND s.height=$h AND s.width=$w AND s.received <= $t
                  AND NOT EXISTS (SELECT 1 FROM labels l WHERE l.item_id = s.item_id AND l.label = 'anomaly')
                ORDER BY s.seq
                """, ("$c", shape.Channels), ("$h", shape.Height), ("$w", shape.Width), ("$t", Utc(receivedBefore))))
            using (var reader = query.ExecuteReader())
            {
                while (reader.Read())
                {
                    seqs.Add(reader.GetInt64(0));
                    ids.Add(reader.GetString(1));
                    pixels.AddRange(FromBytes((byte[])reader[2], shape));
                }
            }
            using var count = Command("SELECT COUNT(*) FROM samples s WHERE EXISTS (SELECT 1 FROM labels l WHERE l.item_id = s.item_id AND l.label = 'anomaly')");
            excluded = Convert.ToInt32(count.ExecuteScalar(), CultureInfo.InvariantCulture);
        }
        var hash = new StringBuilder();
        for (int i = 0; i < seqs.Count; i++) hash.Append(seqs[i]).Append(':').Append(ids[i]).Append('\n');
        var fingerprint = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(hash.ToString())));
        var images = new ImageSet(shape, [.. pixels], new int[seqs.Count], [.. ids]);
        long high = seqs.Count > 0 ? seqs[^1] : 0;
        var description = seqs.Count > 0
            ? $"normal-sample store: {seqs.Count} samples, seq {seqs[0]}..{high}, received before {Utc(receivedBefore)}"
            : "normal-sample store: empty";
        return new TrainingSnapshot(images, [.. seqs], high, fingerprint, excluded, description);
    }

    /// <summary>The newest stored pixels of an item, or null if it is not in the store.</summary>
    public float[]? Find(string itemId, ImageShape shape)
    {
        lock (_lock)
        {
            using var query = Command("SELECT pixels FROM samples WHERE item_id=$id AND channels=$c AND height=$h AND width=$w ORDER BY seq DESC LIMIT 1",
                ("$id", itemId), ("$c", shape.Channels), ("$h", shape.Height), ("$w", shape.Width));
            return query.ExecuteScalar() is byte[] blob ? FromBytes(blob, shape) : null;
        }
    }

    /// <summary>
    /// Records an operator's label. A confirmed anomaly leaves the sample table and is kept with its pixels
    /// for the gate; a false alarm enters the sample table (once) with the given pixels.
    /// </summary>
    public void Label(string itemId, FeedbackLabel label, string channel, DateTimeOffset at, ImageShape shape, float[] pixels, double score, int modelVersion)
    {
        lock (_lock)
        {
            using var tx = _db.BeginTransaction();
            using (var upsert = Command("""
                INSERT INTO labels(item_id, label, at, channel, channels, height, width, pixels) VALUES ($id,$l,$t,$ch,$c,$h,$w,$p)
                ON CONFLICT(item_id) DO UPDATE SET label=$l, at=$t, channel=$ch, channels=$c, height=$h, width=$w, pixels=$p
                """, ("$id", itemId), ("$l", label == FeedbackLabel.Anomaly ? "anomaly" : "normal"), ("$t", Utc(at)), ("$ch", channel),
                ("$c", shape.Channels), ("$h", shape.Height), ("$w", shape.Width), ("$p", ToBytes(pixels))))
            {
                upsert.ExecuteNonQuery();
            }
            long delta = 0;
            if (label == FeedbackLabel.Anomaly)
            {
                using var delete = Command("DELETE FROM samples WHERE item_id=$id", ("$id", itemId));
                delta -= delete.ExecuteNonQuery();
            }
            else
            {
                using var exists = Command("SELECT COUNT(*) FROM samples WHERE item_id=$id", ("$id", itemId));
                if ((long)exists.ExecuteScalar()! == 0)
                {
                    using var insert = Command("INSERT INTO samples(item_id, source, received, score, model_version, channels, height, width, pixels) VALUES ($id,$src,$t,$s,$v,$c,$h,$w,$p)",
                        ("$id", itemId), ("$src", "feedback"), ("$t", Utc(at)), ("$s", score), ("$v", modelVersion),
                        ("$c", shape.Channels), ("$h", shape.Height), ("$w", shape.Width), ("$p", ToBytes(pixels)));
                    delta += insert.ExecuteNonQuery();
                }
            }
            tx.Commit();
            _count += delta;
        }
        _metrics.NormalStoreSize.Set(Count);
        lock (_lock) _metrics.ConfirmedAnomalies.Set(Sqlite.Scalar(_db, "SELECT COUNT(*) FROM labels WHERE label='anomaly'"));
    }

    public string? LabelOf(string itemId)
    {
        lock (_lock)
        {
            using var query = Command("SELECT label FROM labels WHERE item_id=$id", ("$id", itemId));
            return query.ExecuteScalar() as string;
        }
    }

    /// <summary>Pixels of the items operators confirmed as anomalies.</summary>
    public IReadOnlyList<float[]> ConfirmedAnomalies(ImageShape shape)
    {
        lock (_lock)
        {
            using var query = Command("SELECT pixels FROM labels WHERE label='anomaly' AND channels=$c AND height=$h AND width=$w ORDER BY at",
                ("$c", shape.Channels), ("$h", shape.Height), ("$w", shape.Width));
            using var reader = query.ExecuteReader();
            var list = new List<float[]>();
            while (reader.Read()) list.Add(FromBytes((byte[])reader[0], shape));
            return list;
        }
    }
}
