using AnomalyMonitor.Core.Runtime;
using static TorchSharp.torch;

namespace AnomalyMonitor.Tests.Core;

/// <summary>The scorer's block copy out of libtorch gives the values in the tensor's logical order, whatever its layout.</summary>
public sealed class HostCopyTests
{
    [Fact]
    public void A_contiguous_tensor_is_copied_whole_at_the_offset()
    {
        using var scope = NewDisposeScope();
        var source = arange(0f, 12f).reshape(3, 4);
        var destination = new float[15];
        HostCopy.To(source, destination, 2);
        Assert.Equal([0f, 0f, .. Enumerable.Range(0, 12).Select(i => (float)i), 0f], destination);
    }

    [Fact]
    public void A_strided_view_is_copied_in_logical_order_not_memory_order()
    {
        using var scope = NewDisposeScope();
        var transposed = arange(0f, 6f).reshape(2, 3).t(); // memory 0..5, logical [[0,3],[1,4],[2,5]]
        Assert.False(transposed.is_contiguous());
        Assert.Equal([0f, 3f, 1f, 4f, 2f, 5f], HostCopy.ToArray(transposed));
        Assert.Equal(transposed.data<float>().ToArray(), HostCopy.ToArray(transposed));
    }

    [Fact]
    public void Another_dtype_or_too_short_a_destination_is_refused()
    {
        using var scope = NewDisposeScope();
        Assert.Throws<ArgumentException>(() => HostCopy.ToArray(arange(0, 4, dtype: ScalarType.Int64)));
        Assert.Throws<ArgumentOutOfRangeException>(() => HostCopy.To(arange(0f, 8f), new float[6], 0));
    }
}
