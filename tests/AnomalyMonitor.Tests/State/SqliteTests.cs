using AnomalyMonitor.State;
using AnomalyMonitor.Tests.Support;

namespace AnomalyMonitor.Tests.State;

public sealed class SqliteTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void The_write_ahead_log_shrinks_back_to_its_limit_after_a_large_transaction_is_checkpointed()
    {
        const long Limit = 512 * 1024;
        var path = _dir.File("db.sqlite");
        using var db = Sqlite.Open(path, syncEveryCommit: false, walLimitBytes: Limit);
        Sqlite.Execute(db, "CREATE TABLE t (v BLOB NOT NULL)");
        using (var tx = db.BeginTransaction())
        {
            using var insert = db.CreateCommand();
            insert.CommandText = "INSERT INTO t(v) VALUES (zeroblob(65536))";
            for (int i = 0; i < 128; i++) insert.ExecuteNonQuery(); // 8 MiB in one transaction
            tx.Commit();
        }
        long grown = new FileInfo(path + "-wal").Length;
        Assert.True(grown > 4 * Limit, $"the WAL grew to {grown} bytes");

        Sqlite.Execute(db, "DELETE FROM t; PRAGMA wal_checkpoint(PASSIVE);");
        Sqlite.Execute(db, "INSERT INTO t(v) VALUES (x'00')"); // the next write after a full checkpoint resets the WAL

        long after = new FileInfo(path + "-wal").Length;
        Assert.True(after <= Limit, $"the WAL is still {after} bytes after the checkpoint (limit {Limit})");
    }
}
