using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace AnomalyMonitor.Benchmarks;

/// <summary>
/// Bare model.forward over images already in one tensor, under no_grad: the baseline the tool's scorer and
/// the service are measured against. One batch at a time on every libtorch thread (the plain loop), or two
/// batches at a time on two threads with half the libtorch threads each (what Models:Lanes does).
/// </summary>
internal static class Forward
{
    /// <summary>
    /// Every core. Set explicitly on the measuring thread: libtorch keeps its thread count per thread, and a
    /// thread that never set one takes the last count set anywhere, such as a scoring lane's 1.
    /// </summary>
    public static int Threads => Environment.ProcessorCount;

    /// <summary>Images a second, one batch at a time.</summary>
    public static double OneAtATime(nn.Module<Tensor, Tensor> model, Tensor images, int batch) => OneAtATime(model, images, batch, out _);

    /// <summary>Images a second, one batch at a time, and the process's CPU microseconds per image meanwhile.</summary>
    public static double OneAtATime(nn.Module<Tensor, Tensor> model, Tensor images, int batch, out double cpuPerImage)
    {
        torch.set_num_threads(Threads);
        return Time(images, () => Loop(model, images, batch, 0, 1), out cpuPerImage);
    }

    /// <summary>Images a second, two batches at a time (alternate batches on two threads), each on half the threads.</summary>
    public static double SideBySide(nn.Module<Tensor, Tensor> model, Tensor images, int batch) => SideBySide(model, images, batch, out _);

    /// <summary>As <see cref="SideBySide(nn.Module{Tensor, Tensor}, Tensor, int)"/>, and the process's CPU microseconds per image meanwhile.</summary>
    public static double SideBySide(nn.Module<Tensor, Tensor> model, Tensor images, int batch, out double cpuPerImage)
    {
        int each = Math.Max(1, Threads / 2);
        return Time(images, () =>
        {
            var workers = Enumerable.Range(0, 2).Select(w => new Thread(() =>
            {
                torch.set_num_threads(each);
                Loop(model, images, batch, w, 2);
            })).ToList();
            workers.ForEach(t => t.Start());
            workers.ForEach(t => t.Join());
        }, out cpuPerImage);
    }

    /// <summary>
    /// The model's CPU cost per image is what a pipeline on the same cores must share them with: it bounds the
    /// pipeline's rate however cheap the rest of its path is.
    /// </summary>
    private static double Time(Tensor images, Action run, out double cpuPerImage)
    {
        using var self = Process.GetCurrentProcess();
        var cpu = self.TotalProcessorTime;
        var clock = Stopwatch.StartNew();
        run();
        double seconds = clock.Elapsed.TotalSeconds;
        self.Refresh();
        cpuPerImage = (self.TotalProcessorTime - cpu).TotalMicroseconds / images.shape[0];
        return images.shape[0] / seconds;
    }

    private static void Loop(nn.Module<Tensor, Tensor> model, Tensor images, int batch, int first, int step)
    {
        long count = images.shape[0];
        using var noGrad = no_grad();
        for (long b = first * batch; b < count; b += step * batch)
        {
            using var scope = NewDisposeScope();
            _ = model.forward(images.narrow(0, b, Math.Min(batch, count - b))).sum().item<float>();
        }
    }
}
