using AnomalyMonitor.State;
using AnomalyMonitor.Core.Imaging;
using AnomalyMonitor.Telemetry;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Options;

namespace AnomalyMonitor.Samples;

/// <summary>One accepted item on its way into the store.</summary>
public readonly record struct NewSample(string ItemId, string Source, DateTimeOffset ReceivedAt, double Score, int ModelVersion, float[] Pixels);

/// <summary>
/// Accepted normal images, bounded (oldest replaced first), with their provenance; the training set for
/// retraining. Also holds the items collected while learning the first model. One SQLite file.
/// </summary>
public sealed partial class NormalSampleStore : IDisposable
{
    private readonly SqliteConnection _db;
    private readonly int _capacity;
    private readonly MonitorMetrics _metrics;
    private readonly Lock _lock = new();
    private long _count;

    public NormalSampleStore(IOptions<NormalStoreOptions> options, PathResolver paths, MonitorMetrics metrics, IOptions<ServiceOptions>? service = null)
    {
        _capacity = options.Value.Capacity;
        _metrics = metrics;
        _db = Sqlite.Open(paths.Resolve(options.Value.Path), service?.Value.SyncEveryCommit ?? false);
        Sqlite.Execute(_db, """
            CREATE TABLE IF NOT EXISTS samples (
              seq INTEGER PRIMARY KEY AUTOINCREMENT, item_id TEXT NOT NULL, source TEXT NOT NULL, received TEXT NOT NULL,
              score REAL NOT NULL, model_version INTEGER NOT NULL, channels INTEGER NOT NULL, height INTEGER NOT NULL, width INTEGER NOT NULL,
              pixels BLOB NOT NULL);
            CREATE INDEX IF NOT EXISTS samples_item ON samples(item_id);
            CREATE TABLE IF NOT EXISTS held (
              item_id TEXT PRIMARY KEY, source TEXT NOT NULL, received TEXT NOT NULL,
              channels INTEGER NOT NULL, height INTEGER NOT NULL, width INTEGER NOT NULL, pixels BLOB NOT NULL);
            CREATE TABLE IF NOT EXISTS labels (
              item_id TEXT PRIMARY KEY, label TEXT NOT NULL, at TEXT NOT NULL, channel TEXT NOT NULL,
              channels INTEGER, height INTEGER, width INTEGER, pixels BLOB);
            CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            """);
        _count = Sqlite.Scalar(_db, "SELECT COUNT(*) FROM samples");
        _metrics.NormalStoreSize.Set(_count);
        _metrics.ConfirmedAnomalies.Set(Sqlite.Scalar(_db, "SELECT COUNT(*) FROM labels WHERE label='anomaly'"));
    }

    public long Count => Interlocked.Read(ref _count);
    /// <summary>The newest this many samples are kept (NormalStore:Capacity).</summary>
    public int Capacity => _capacity;

    /// <summary>Stores a micro-batch's accepted items in one transaction (one commit, not one per item).</summary>
    public void AddRange(IReadOnlyList<NewSample> samples, ImageShape shape)
    {
        if (samples.Count == 0) return;
        lock (_lock)
        {
            using var tx = _db.BeginTransaction();
            using (var insert = _db.CreateCommand())
            {
                insert.CommandText = "INSERT INTO samples(item_id, source, received, score, model_version, channels, height, width, pixels) VALUES ($id,$src,$t,$s,$v,$c,$h,$w,$p)";
                var id = insert.Parameters.Add("$id", SqliteType.Text);
                var src = insert.Parameters.Add("$src", SqliteType.Text);
                var t = insert.Parameters.Add("$t", SqliteType.Text);
                var score = insert.Parameters.Add("$s", SqliteType.Real);
                var version = insert.Parameters.Add("$v", SqliteType.Integer);
                insert.Parameters.AddWithValue("$c", shape.Channels);
                insert.Parameters.AddWithValue("$h", shape.Height);
                insert.Parameters.AddWithValue("$w", shape.Width);
                var pixels = insert.Parameters.Add("$p", SqliteType.Blob);
                foreach (var sample in samples)
                {
                    id.Value = sample.ItemId;
                    src.Value = sample.Source;
                    t.Value = Utc(sample.ReceivedAt);
                    score.Value = sample.Score;
                    version.Value = sample.ModelVersion;
                    pixels.Value = ToBytes(sample.Pixels);
                    insert.ExecuteNonQuery();
                }
            }
            long count = _count + samples.Count;
            if (count > _capacity)
            {
                // Oldest first: the store follows the stream as it drifts.
                using var trim = _db.CreateCommand();
                trim.CommandText = "DELETE FROM samples WHERE seq IN (SELECT seq FROM samples ORDER BY seq LIMIT $n)";
                trim.Parameters.AddWithValue("$n", count - _capacity);
                count -= trim.ExecuteNonQuery();
            }
            tx.Commit();
            // Only a committed transaction counts: a failed one (a full disk) is rolled back and retried whole.
            _count = count;
        }
        _metrics.NormalStoreSize.Set(Count);
    }

    /// <summary>Records an item collected for the first model, so that it survives a restart; false if it was already held.</summary>
    public bool Hold(string itemId, string source, DateTimeOffset receivedAt, ImageShape shape, ReadOnlySpan<float> pixels)
    {
        var blob = ToBytes(pixels);
        lock (_lock)
        {
            using var insert = _db.CreateCommand();
            insert.CommandText = "INSERT OR IGNORE INTO held(item_id, source, received, channels, height, width, pixels) VALUES ($id,$src,$t,$c,$h,$w,$p)";
            insert.Parameters.AddWithValue("$id", itemId);
            insert.Parameters.AddWithValue("$src", source);
            insert.Parameters.AddWithValue("$t", receivedAt.ToString("O"));
            insert.Parameters.AddWithValue("$c", shape.Channels);
            insert.Parameters.AddWithValue("$h", shape.Height);
            insert.Parameters.AddWithValue("$w", shape.Width);
            insert.Parameters.AddWithValue("$p", blob);
            return insert.ExecuteNonQuery() == 1;
        }
    }

    public IReadOnlyList<(string ItemId, string Source, DateTimeOffset ReceivedAt, float[] Pixels)> HeldItems(ImageShape shape)
    {
        lock (_lock)
        {
            using var query = _db.CreateCommand();
            query.CommandText = "SELECT item_id, source, received, pixels FROM held WHERE channels=$c AND height=$h AND width=$w ORDER BY rowid";
            query.Parameters.AddWithValue("$c", shape.Channels);
            query.Parameters.AddWithValue("$h", shape.Height);
            query.Parameters.AddWithValue("$w", shape.Width);
            using var reader = query.ExecuteReader();
            var list = new List<(string, string, DateTimeOffset, float[])>();
            while (reader.Read())
                list.Add((reader.GetString(0), reader.GetString(1), DateTimeOffset.Parse(reader.GetString(2), System.Globalization.CultureInfo.InvariantCulture), FromBytes((byte[])reader[3], shape)));
            return list;
        }
    }

    public void ReleaseHeld(IEnumerable<string> itemIds)
    {
        lock (_lock)
        {
            using var tx = _db.BeginTransaction();
            foreach (var id in itemIds)
            {
                using var delete = _db.CreateCommand();
                delete.CommandText = "DELETE FROM held WHERE item_id=$id";
                delete.Parameters.AddWithValue("$id", id);
                delete.ExecuteNonQuery();
            }
            tx.Commit();
        }
    }

    private static string Utc(DateTimeOffset t) => t.ToUniversalTime().ToString("O", System.Globalization.CultureInfo.InvariantCulture);

    // A retrained model must see exactly the pixels that were judged. Images decoded from 8-bit sources (PNG,
    // JPEG, IDX) hold only multiples of 1/255, so they are stored as one byte a pixel, a quarter of the float32
    // blob: the store wrote about four times the bytes it needed through SQLite and its WAL, beside libtorch.
    // Anything else (16-bit images, float sources) stays float32. The blob's length says which it is.
    private static byte[] ToBytes(ReadOnlySpan<float> pixels) => PixelBytes.Pack(pixels);

    private static float[] FromBytes(byte[] blob, ImageShape shape) => PixelBytes.Unpack(blob, shape.PixelCount);

    public void Dispose() => _db.Dispose();

    private SqliteCommand Command(string sql, params (string Name, object? Value)[] parameters)
    {
        var command = _db.CreateCommand();
        command.CommandText = sql;
        foreach (var (name, value) in parameters) command.Parameters.AddWithValue(name, value ?? DBNull.Value);
        return command;
    }

}
