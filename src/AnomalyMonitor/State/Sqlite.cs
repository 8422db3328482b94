using Microsoft.Data.Sqlite;

namespace AnomalyMonitor.State;

internal static class Sqlite
{
    /// <summary>
    /// Opens a database in WAL mode, so readers do not block the writer. With synchronous=NORMAL (the
    /// default) a committed transaction survives a crash of the process (kill -9): it is in the WAL file,
    /// in the kernel's cache. It does not survive a power loss or a kernel crash before the next
    /// checkpoint: the last transactions may then be rolled back, though the file stays consistent.
    /// <paramref name="syncEveryCommit"/> (Service:SyncEveryCommit) turns on synchronous=FULL: every commit
    /// is fsync'ed, so it also survives a power loss, at one fsync per micro-batch.
    /// </summary>
    public static SqliteConnection Open(string path, bool syncEveryCommit = false) => Open(path, syncEveryCommit, WalLimitBytes);

    /// <summary>
    /// The WAL file is reused, never shrunk, after a checkpoint: one large transaction (a burst of samples,
    /// an outbox backlog) would otherwise keep its size on disk for months. Past this, it is truncated back.
    /// </summary>
    public const long WalLimitBytes = 64L * 1024 * 1024;

    internal static SqliteConnection Open(string path, bool syncEveryCommit, long walLimitBytes)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString());
        connection.Open();
        Execute(connection, $"PRAGMA journal_mode=WAL; PRAGMA synchronous={(syncEveryCommit ? "FULL" : "NORMAL")}; PRAGMA busy_timeout=5000; PRAGMA journal_size_limit={walLimitBytes};");
        return connection;
    }

    public static void Execute(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    public static long Scalar(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return Convert.ToInt64(command.ExecuteScalar() ?? 0L, System.Globalization.CultureInfo.InvariantCulture);
    }
}
