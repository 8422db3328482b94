using AnomalyMonitor.Core.Scoring;

namespace AnomalyMonitor.Pipeline.Scoring;

/// <summary>
/// A second scoring thread: it scores one batch while the scoring loop's own thread scores the next, each
/// on its share of libtorch's threads. On a few CPU cores the small convolutions of a 28x28 batch do not
/// split well across threads, and two batches side by side keep the cores busier than one on all of them
/// (docs/benchmarks.md, 3 and 4b). Judging stays on the loop's thread, in the batches' order.
/// </summary>
public sealed class ScoringLane : IDisposable
{
    private readonly Thread _thread;
    private readonly SemaphoreSlim _work = new(0);
    private readonly SemaphoreSlim _done = new(0);
    private IBatchScorer? _scorer;
    private Batch? _batch;
    private ScoreOutput? _output;
    private int _threads;
    private Exception? _error;
    private volatile bool _stopping;

    public ScoringLane()
    {
        _thread = new Thread(Loop) { IsBackground = true, Name = "scoring lane" };
        _thread.Start();
    }

    /// <summary>Starts scoring <paramref name="batch"/> into <paramref name="output"/>; <see cref="Wait"/> for it before starting another.</summary>
    public void Start(IBatchScorer scorer, Batch batch, ScoreOutput output, int threads)
    {
        (_scorer, _batch, _output, _threads, _error) = (scorer, batch, output, threads, null);
        _work.Release();
    }

    /// <summary>Waits for the started batch; what it threw, or null.</summary>
    public Exception? Wait()
    {
        _done.Wait();
        return _error;
    }

    private void Loop()
    {
        while (true)
        {
            _work.Wait();
            if (_stopping) return;
            try
            {
                // libtorch keeps its thread count per thread: this one's is set here, once per change.
                if (TorchSharp.torch.get_num_threads() != _threads) TorchSharp.torch.set_num_threads(_threads);
                _scorer!.Score(_batch!, _output!);
            }
            catch (Exception e)
            {
                _error = e;
            }
            finally
            {
                (_scorer, _batch) = (null, null);
                _done.Release();
            }
        }
    }

    public void Dispose()
    {
        _stopping = true;
        _work.Release();
        _thread.Join();
        _work.Dispose();
        _done.Dispose();
    }
}
