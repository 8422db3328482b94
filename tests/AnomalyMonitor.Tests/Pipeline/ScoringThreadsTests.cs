using AnomalyMonitor.Core.Runtime;
using AnomalyMonitor.Pipeline;
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
        TestModel.CopyTo(Path.Combine(_dir.Path, "models"));
        int loaded = TorchRuntime.DefaultThreads;
        // What a scoring lane or a retraining does on its own thread; a thread that never set a count then reads this one.
        TorchSharp.torch.set_num_threads(1);
        try
        {
            Assert.Equal(1, TorchSharp.torch.get_num_threads());
            Assert.Equal(loaded, TorchRuntime.DefaultThreads);
            // Which thread installs the model is the host's choice, so whether it would have read the 1 is not certain;
            // the benchmark's second service in one process did, and then scored every batch on one thread and one lane.
            await using var service = await TestService.StartAsync(_dir.Path, new Dictionary<string, string?>());
            var holder = service.App.Services.GetRequiredServiceOf<ModelHolder>();
            Assert.Equal(loaded, holder.ScoringThreads(int.MaxValue));
            Assert.Equal(loaded >= 2 ? 2 : 1, holder.Lanes);
        }
        finally
        {
            TorchSharp.torch.set_num_threads(loaded);
        }
    }
}
