using System.Threading.Channels;

namespace AnomalyMonitor.Ingest;

/// <summary>
/// Moves settled files out of processing/ on a thread of its own. Deleting a judged file on this machine's
/// ext4 takes 100–200 µs, most of it waiting on the journal rather than computing; on the sink thread that
/// wait held up every batch behind it. At most <c>capacity</c> files wait here: when the queue is full, or
/// once it has stopped, the caller moves the file itself. A file waiting here is already judged and recorded;
/// a kill -9 leaves it in processing/, judged again at the next start like any claimed file, so the queue
/// bounds how many a crash judges twice.
/// </summary>
internal sealed class FolderMover<T> : IDisposable
{
    private readonly Channel<T>? _queue;
    private readonly Action<T> _move;
    private readonly Thread? _thread;

    public FolderMover(int capacity, Action<T> move)
    {
        _move = move;
        if (capacity <= 0) return; // every file moved by the caller
        _queue = Channel.CreateBounded<T>(new BoundedChannelOptions(capacity) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
        _thread = new Thread(Run) { IsBackground = true, Name = "folder-mover" };
        _thread.Start();
    }

    /// <summary>Files queued or being moved by the thread.</summary>
    public int Pending => Volatile.Read(ref _pending);
    private int _pending;

    /// <summary>Moves the callers did themselves: the queue was full, or stopped (the benchmark's view of whether it keeps up).</summary>
    public long MovedByCaller => Interlocked.Read(ref _movedByCaller);
    private long _movedByCaller;

    /// <summary>Queues the move, or does it now when the queue is full or stopped. Never waits for the thread.</summary>
    public void Move(T file)
    {
        Interlocked.Increment(ref _pending);
        if (_queue is not null && _queue.Writer.TryWrite(file)) return;
        Interlocked.Decrement(ref _pending);
        Interlocked.Increment(ref _movedByCaller);
        _move(file);
    }

    private void Run()
    {
        var reader = _queue!.Reader;
        while (reader.WaitToReadAsync().AsTask().GetAwaiter().GetResult())
            while (reader.TryRead(out var file))
            {
                _move(file);
                Interlocked.Decrement(ref _pending);
            }
    }

    /// <summary>Moves everything still queued before it returns; later moves happen on the caller's thread.</summary>
    public void Dispose()
    {
        _queue?.Writer.TryComplete();
        _thread?.Join();
    }
}
