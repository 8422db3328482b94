using AnomalyMonitor.Core.Imaging;
using AnomalyMonitor.Pipeline;

namespace AnomalyMonitor.Tests.Pipeline;

public sealed class BatchPoolTests
{
    [Fact]
    public async Task A_batch_of_the_old_shape_returned_after_a_shape_change_is_never_rented_again()
    {
        var small = new ImageShape(1, 8, 8);
        var large = new ImageShape(1, 16, 16);
        using var pool = new BatchPool(2, 4);
        var old = await pool.RentAsync(small, CancellationToken.None);
        var current = await pool.RentAsync(large, CancellationToken.None); // a model of another size took over
        pool.Return(old); // in flight across the change, back only now

        var next = await pool.RentAsync(large, CancellationToken.None);

        Assert.Equal(large, next.Shape);
        Assert.NotSame(old, next);
        pool.Return(current);
        pool.Return(next);
    }
}
