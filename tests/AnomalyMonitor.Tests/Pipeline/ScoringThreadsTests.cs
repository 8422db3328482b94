using AnomalyMonitor.Core.Runtime;
using AnomalyMonitor.Hosting;
using AnomalyMonitor.Pipeline;
using AnomalyMonitor.State;
using AnomalyMonitor.Tests.Support;

namespace AnomalyMonitor.Tests.Pipeline;

/// <summary>
/// Models:SmallBatch: a small batch scores on one libtorch thread, a full one on Models:Threads; with Models:Threads 0,
/// libtorch's own default as it loaded, whatever count another thread set since.
/// </summary>
public sealed class ScoringThreadsTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData("16", 1, 1)]
    [InlineData("16", 15, 1)]
    [InlineData("16", 16, 2)]
    [InlineData("16", 32, 2)]
    [InlineData("0", 1, 2)]
    public async Task A_batch_under_the_small_batch_size_scores_on_one_thread(string smallBatch, int batchCount, int threads)
    {
        TestModel.CopyTo(Path.Combine(_dir.Path, "models"));
        await using var service = await TestService.StartAsync(_dir.Path, new Dictionary<string, string?>
        {
            ["Models:Threads"] = "2",
            ["Models:SmallBatch"] = smallBatch,
        });
        Assert.Equal(threads, service.App.Services.GetRequiredServiceOf<ModelHolder>().ScoringThreads(batchCount));
    }

    [Fact]
    public async Task The_default_is_libtorchs_count_at_load_not_one_another_thread_set_since()
    {
        int loaded = TorchRuntime.DefaultThreads;
        // Built, not started: nothing has read the default yet, and the thread that reads it is the test's choice.
        await using var app = ServiceHost.Build(overrides: new Dictionary<string, string?>(TestService.Defaults()) { ["Models:Device"] = "cpu" },
            paths: new PathResolver(_dir.Path));
        var holder = app.Services.GetRequiredServiceOf<ModelHolder>();
        int seen = 0, threads = 0, lanes = 0;
        try
        {
            // What a scoring lane or a retraining does on its own thread; a thread that never set a count then reads it.
            OnNewThread(() => TorchSharp.torch.set_num_threads(1));
            OnNewThread(() => (seen, threads, lanes) = (TorchSharp.torch.get_num_threads(), holder.ScoringThreads(int.MaxValue), holder.Lanes));
        }
        finally
        {
            OnNewThread(() => TorchSharp.torch.set_num_threads(loaded));
        }
        Assert.Equal(1, seen); // the hazard: reading the count here would have scored on one thread and one lane
        Assert.Equal(loaded, threads);
        Assert.Equal(loaded >= 2 ? 2 : 1, lanes); // on a machine where libtorch defaults to one thread, the hazard cannot show
    }

    private static void OnNewThread(Action action)
    {
        var thread = new Thread(() => action());
        thread.Start();
        thread.Join();
    }
}
