using AnomalyMonitor.Pipeline;
using AnomalyMonitor.Tests.Support;

namespace AnomalyMonitor.Tests.Pipeline;

/// <summary>Models:SmallBatch: a small batch scores on one libtorch thread, a full one on Models:Threads.</summary>
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
}
