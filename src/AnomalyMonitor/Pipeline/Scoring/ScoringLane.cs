using System.Diagnostics;
using AnomalyMonitor.Core.Scoring;

namespace AnomalyMonitor.Pipeline.Scoring;

/// <summary>
/// A scoring thread of its own. With two lanes, each batch is scored on whichever lane is free while the
/// scoring loop's thread judges them in order: on a few CPU cores the small convolutions of a 28x28 batch
/// do not split well across threads, and two batches side by side keep the cores busier than one on all of
/// them (docs/benchmarks.md, 3 and 4b).
/// </summary>
public sealed class ScoringLane : IDisposable
{
    private readonly Thread _thread;
    private readonly SemaphoreSlim _work = new(0);
    private TaskCompletionSource _done = Completed();
    private IBatchScorer? _scorer;
    private Batch? _batch;
    private ScoreOutput? _output;
    private int _threads;
    private float _reconstructAbove;
    private Exception? _error;
    private long _elapsedTicks;
    private volatile bool _stopping;

    public ScoringLane(string name)
    {
        _thread = new Thread(Loop) { IsBackground = true, Name = name };
        _thread.Start();
    }

    /// <summary>Completes when the started batch is scored (at once when none was started).</summary>
    public Task Completion => _done.Task;

    public bool IsDone => _done.Task.IsCompleted;

    /// <summary>The last batch's scoring time, as the lane's thread saw it.</summary>
    public TimeSpan Elapsed => Stopwatch.GetElapsedTime(0, Interlocked.Read(ref _elapsedTicks));

    /// <summary>Starts scoring <paramref name="batch"/> into <paramref name="output"/>; <see cref="Wait"/> for it before starting another.</summary>
    public void Start(IBatchScorer scorer, Batch batch, ScoreOutput output, int threads, float reconstructAbove)
    {
        (_scorer, _batch, _output, _threads, _reconstructAbove, _error) = (scorer, batch, output, threads, reconstructAbove, null);
        // Continuations run elsewhere: the lane's thread goes straight back to waiting for work.
        _done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _work.Release();
    }

    /// <summary>Waits for the started batch; what it threw, or null.</summary>
    public Exception? Wait()
    {
        _done.Task.GetAwaiter().GetResult();
        return _error;
    }

    private void Loop()
    {
        while (true)
        {
            _work.Wait();
            if (_stopping) return;
            long started = Stopwatch.GetTimestamp();
            try
            {
                // libtorch keeps its thread count per thread: this one's is set here, once per change.
                if (TorchSharp.torch.get_num_threads() != _threads) TorchSharp.torch.set_num_threads(_threads);
                _scorer!.Score(_batch!, _output!, _reconstructAbove);
            }
            catch (Exception e)
            {
                _error = e;
            }
            finally
            {
                (_scorer, _batch) = (null, null);
                Interlocked.Exchange(ref _elapsedTicks, Stopwatch.GetTimestamp() - started);
                _done.TrySetResult();
            }
        }
    }

    private static TaskCompletionSource Completed()
    {
        var done = new TaskCompletionSource();
        done.SetResult();
        return done;
    }

    public void Dispose()
    {
        _stopping = true;
        _work.Release();
        _thread.Join();
        _work.Dispose();
    }
}
