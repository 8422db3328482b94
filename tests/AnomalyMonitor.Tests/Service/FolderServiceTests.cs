using System.Diagnostics;
using AnomalyMonitor.Tests.Support;

namespace AnomalyMonitor.Tests.Service;

/// <summary>The folder source, judge state and cold start, through the real service.</summary>
public sealed class FolderServiceTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private string Inbox => Path.Combine(_dir.Path, "inbox");
    private string In(params string[] parts) => Path.Combine([Inbox, .. parts]);

    [Fact]
    public async Task Files_present_at_start_and_dropped_later_each_get_the_right_disposition()
    {
        TestModel.CopyTo(Path.Combine(_dir.Path, "models"));
        Directory.CreateDirectory(Inbox);
        var good = TestModel.NormalPng(0);
        File.WriteAllBytes(In("early-normal.png"), TestModel.NormalPng(1));
        File.WriteAllBytes(In("early-anomaly.png"), TestModel.AnomalyPng(0));
        File.WriteAllBytes(In("empty.png"), []);
        File.WriteAllBytes(In("truncated.png"), good[..(good.Length / 2)]);
        File.WriteAllBytes(In("corrupt.png"), [.. good[..16], .. Enumerable.Repeat((byte)0x42, 300)]);
        File.WriteAllText(In("notes.txt"), "not an image");
        File.WriteAllBytes(In("huge.png"), Synthetic.Png(Synthetic.Noise(new Random(1), 64), 64));
        File.WriteAllBytes(In("wrong-size.png"), Synthetic.Png(Synthetic.Blob(new Random(2), 20), 20));
        File.WriteAllBytes(In("writing.png.partial"), good);

        await using var service = await TestService.StartAsync(_dir.Path, new Dictionary<string, string?> { ["Ingest:Folder:MaxFileBytes"] = "3000" });
        // Dropped while running, including a batch file of 3 images (judged as file#index).
        File.WriteAllBytes(In("late-normal.png"), TestModel.NormalPng(2));
        var rng = new Random(3);
        var batch = new List<byte[]> { Synthetic.ToBytes(Synthetic.Blob(rng, 16)), Synthetic.ToBytes(Synthetic.Stripes(rng, 16)), Synthetic.ToBytes(Synthetic.Blob(rng, 16)) };
        File.WriteAllBytes(In("batch-images-idx3-ubyte"), DataFiles.IdxImages(batch, 16, 16));

        await Wait.UntilAsync(() => Directory.GetFiles(In("processed", "normal")).Length == 2 && Directory.GetFiles(In("processed", "anomaly")).Length == 2
            && Directory.GetFiles(In("rejected"), "*.reason.txt").Length == 6 && service.Pipeline.Judged >= 2 + 1 + 3, "every file moved");
        var reasons = Directory.GetFiles(In("rejected"), "*.reason.txt").ToDictionary(f => Path.GetFileName(f)[..^".reason.txt".Length], File.ReadAllText);
        Assert.Contains("empty", reasons["empty.png"]);
        Assert.Contains("truncated", reasons["truncated.png"]);
        Assert.Matches("corrupt|truncated", reasons["corrupt.png"]);
        Assert.Contains("unsupported", reasons["notes.txt"]);
        Assert.Contains("too_large", reasons["huge.png"]);
        Assert.Contains("wrong_dimensions", reasons["wrong-size.png"]);
        Assert.True(File.Exists(In("processed", "normal", "early-normal.png")));
        Assert.True(File.Exists(In("processed", "normal", "late-normal.png")));
        Assert.True(File.Exists(In("processed", "anomaly", "early-anomaly.png")));
        Assert.True(File.Exists(In("processed", "anomaly", "batch-images-idx3-ubyte")), "the batch holds a stripe image");
        Assert.True(File.Exists(In("writing.png.partial")), "a file still being written is left alone");
        Assert.Empty(Directory.GetFiles(In("processing")));
        Assert.Equal(6, service.Count("rejected"));
        Assert.Equal(2 + 1 + 3, service.Pipeline.Judged);
        foreach (var reason in new[] { "empty", "truncated", "unsupported", "too_large", "wrong_dimensions" })
            Assert.True(service.Metrics.Rejected.GetAllLabelValues().Any(l => l[1] == reason), $"no rejected{{reason={reason}}} metric");
    }

    [Fact]
    public async Task Files_left_in_processing_by_a_crash_are_judged_at_start()
    {
        TestModel.CopyTo(Path.Combine(_dir.Path, "models"));
        Directory.CreateDirectory(In("processing"));
        File.WriteAllBytes(In("processing", "claimed-before-crash.png"), TestModel.AnomalyPng(1));
        File.WriteAllBytes(In("processing", "also-claimed.png"), TestModel.NormalPng(3));
        await using var service = await TestService.StartAsync(_dir.Path, new Dictionary<string, string?>());
        await Wait.UntilAsync(() => File.Exists(In("processed", "anomaly", "claimed-before-crash.png")) && File.Exists(In("processed", "normal", "also-claimed.png"))
            && service.Pipeline.Judged >= 2, "recovered files judged");
        Assert.Empty(Directory.GetFiles(In("processing")));
        Assert.Equal(2, service.Pipeline.Judged);
    }

    [Fact]
    public async Task A_graceful_stop_moves_every_judged_file_out_of_processing()
    {
        TestModel.CopyTo(Path.Combine(_dir.Path, "models"));
        const int files = 60;
        await using (var service = await TestService.StartAsync(_dir.Path, new Dictionary<string, string?>()))
        {
            for (int i = 0; i < files; i++) File.WriteAllBytes(In($"n-{i:D2}.png"), TestModel.NormalPng(i));
            await Wait.UntilAsync(() => service.Pipeline.Judged >= files, "every file judged");
        } // the stop drains the mover's queue, whatever it still held
        Assert.Empty(Directory.GetFiles(In("processing")));
        Assert.Equal(files, Directory.GetFiles(In("processed", "normal")).Length);
    }

    [Fact]
    public async Task The_rolling_window_is_restored_after_a_restart()
    {
        TestModel.CopyTo(Path.Combine(_dir.Path, "models"));
        // Accept = K: every normal enters the window, so its size does not hang on where each score falls
        // against the window's own σ (which batch a file lands in changes that); only "more than MinWindow" matters.
        var settings = new Dictionary<string, string?> { ["Judge:MinWindow"] = "10", ["Judge:Window"] = "500", ["Judge:Accept"] = "4" };
        int window;
        double threshold;
        await using (var first = await TestService.StartAsync(_dir.Path, settings))
        {
            for (int i = 0; i < 30; i++) File.WriteAllBytes(Path.Combine(first.Inbox, $"n{i}.png"), TestModel.NormalPng(i));
            await Wait.UntilAsync(() => first.Pipeline.Judged == 30, "30 judged");
            await first.StopAsync();
            window = first.Holder.Judge!.WindowCount;
            threshold = first.Holder.Judge.Threshold;
        }
        Assert.True(window > 10, $"window holds {window}, not more than MinWindow");
        await using var second = await TestService.StartAsync(_dir.Path, settings);
        await Wait.UntilAsync(() => second.Holder.Judge is not null, "model loaded");
        // The gauge is set once the restore is complete; the window's count can be seen a moment before its mean.
        await Wait.UntilAsync(() => second.Holder.Judge!.WindowCount == window && second.Metrics.WindowScores.Value == window, $"window of {window} restored");
        Assert.Equal(threshold, second.Holder.Judge!.Threshold, 9);
        Assert.True(second.Holder.Judge.UsingWindow, "judging from the restored window, not the calibration");
    }
}
