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

    /// <summary>Files queued and not yet moved.</summary>
    public int Pending => _queue?.Reader.Count ?? 0;

    /// <summary>Queues the move, or does it now when the queue is full or stopped. Never waits for the thread.</summary>
    public void Move(T file)
    {
        if (_queue is null || !_queue.Writer.TryWrite(file)) _move(file);
    }

    private void Run()
    {
        var reader = _queue!.Reader;
        while (reader.WaitToReadAsync().AsTask().GetAwaiter().GetResult())
            while (reader.TryRead(out var file)) _move(file);
    }

    /// <summary>Moves everything still queued before it returns; later moves happen on the caller's thread.</summary>
    public void Dispose()
    {
        _queue?.Writer.TryComplete();
        _thread?.Join();
    }
}
