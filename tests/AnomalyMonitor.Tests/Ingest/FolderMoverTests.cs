using AnomalyMonitor.Ingest;
using AnomalyMonitor.Tests.Support;

namespace AnomalyMonitor.Tests.Ingest;

/// <summary>
/// How judged files leave processing/: one atomic rename that never replaces a file, on the folder's mover
/// thread, which a stop drains and a full queue bypasses.
/// </summary>
public sealed class FolderMoverTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void A_move_onto_an_existing_name_is_refused_and_both_files_keep_their_bytes()
    {
        File.WriteAllText(_dir.File("a"), "source");
        File.WriteAllText(_dir.File("b"), "already here");

        Assert.False(NoReplaceMove.TryMove(_dir.File("a"), _dir.File("b")));
        Assert.Equal("source", File.ReadAllText(_dir.File("a")));
        Assert.Equal("already here", File.ReadAllText(_dir.File("b")));

        Assert.True(NoReplaceMove.TryMove(_dir.File("a"), _dir.File("c")));
        Assert.False(File.Exists(_dir.File("a")));
        Assert.Equal("source", File.ReadAllText(_dir.File("c")));
        Assert.Throws<FileNotFoundException>(() => NoReplaceMove.TryMove(_dir.File("a"), _dir.File("d")));
    }

    [Fact]
    public void MoveInto_a_folder_holding_the_name_adds_a_suffix()
    {
        var folder = Directory.CreateDirectory(_dir.File("normal")).FullName;
        File.WriteAllText(Path.Combine(folder, "x.png"), "first");
        File.WriteAllText(_dir.File("x.png"), "second");

        var target = FolderLayout.MoveInto(_dir.File("x.png"), folder);

        Assert.Equal(Path.Combine(folder, "x.1.png"), target);
        Assert.Equal("first", File.ReadAllText(Path.Combine(folder, "x.png")));
        Assert.Equal("second", File.ReadAllText(target));
    }

    [Fact]
    public void A_stop_finishes_every_queued_move_and_later_moves_run_on_the_caller()
    {
        using var gate = new ManualResetEventSlim();
        var moved = new System.Collections.Concurrent.ConcurrentQueue<(int File, int Thread)>();
        var mover = new FolderMover<int>(capacity: 8, f =>
        {
            gate.Wait();
            moved.Enqueue((f, Environment.CurrentManagedThreadId));
        });
        for (int i = 0; i < 5; i++) mover.Move(i); // the thread takes the first and waits at the gate
        Assert.Empty(moved);

        gate.Set();
        mover.Dispose();

        Assert.Equal([0, 1, 2, 3, 4], moved.Select(m => m.File));
        Assert.All(moved, m => Assert.NotEqual(Environment.CurrentManagedThreadId, m.Thread));
        mover.Move(5);
        Assert.Equal((5, Environment.CurrentManagedThreadId), moved.Last());
    }

    [Fact]
    public void A_full_queue_moves_on_the_caller_instead_of_waiting()
    {
        using var gate = new ManualResetEventSlim();
        using var started = new ManualResetEventSlim();
        int caller = Environment.CurrentManagedThreadId;
        var onCaller = new List<int>();
        var mover = new FolderMover<int>(capacity: 2, f =>
        {
            if (Environment.CurrentManagedThreadId == caller)
            {
                onCaller.Add(f);
                return;
            }
            started.Set();
            gate.Wait();
        });
        mover.Move(0);
        Assert.True(started.Wait(TimeSpan.FromSeconds(30)), "the mover took the first file");
        for (int i = 1; i <= 4; i++) mover.Move(i); // 1 and 2 fill the queue; 3 and 4 find it full

        Assert.Equal([3, 4], onCaller);
        Assert.Equal(3, mover.Pending); // two queued, one at the gate
        gate.Set();
        mover.Dispose();
        Assert.Equal(0, mover.Pending);
    }

    [Fact]
    public void Capacity_zero_moves_every_file_on_the_caller()
    {
        int caller = Environment.CurrentManagedThreadId;
        var threads = new List<int>();
        using var mover = new FolderMover<int>(capacity: 0, _ => threads.Add(Environment.CurrentManagedThreadId));
        mover.Move(1);
        mover.Move(2);
        Assert.Equal([caller, caller], threads);
    }
}
