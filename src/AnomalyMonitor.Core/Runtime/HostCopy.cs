using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace AnomalyMonitor.Core.Runtime;

/// <summary>
/// Copies a float tensor's values into a .NET array as one block. TensorAccessor.CopyTo walks the elements one
/// by one through their strides: 3.9 µs an image for a 28x28 reconstruction against 0.04 for a block copy
/// (docs/benchmarks.md, 4b), and the scorer copies a reconstruction and an error map for every image it scores.
/// </summary>
public static class HostCopy
{
    /// <summary>Copies every value of <paramref name="source"/> (moved to the CPU and made contiguous first if need be) into <paramref name="destination"/>.</summary>
    public static void To(Tensor source, Span<float> destination)
    {
        if (source.dtype != ScalarType.Float32) throw new ArgumentException($"a {source.dtype} tensor where float32 was expected", nameof(source));
        using var scope = NewDisposeScope();
        var host = source.device_type == TorchSharp.DeviceType.CPU ? source : source.cpu();
        var dense = host.is_contiguous() ? host : host.contiguous();
        // bytes is a view of the tensor's own memory on the CPU, not a copy.
        MemoryMarshal.Cast<byte, float>(dense.bytes).CopyTo(destination);
    }

    /// <summary>As <see cref="To(Tensor, Span{float})"/>, at <paramref name="offset"/> in an array.</summary>
    public static void To(Tensor source, float[] destination, int offset) => To(source, destination.AsSpan(offset, checked((int)source.numel())));

    /// <summary>The values of <paramref name="source"/> in a new array.</summary>
    public static float[] ToArray(Tensor source)
    {
        var array = new float[source.numel()];
        To(source, array);
        return array;
    }
}
