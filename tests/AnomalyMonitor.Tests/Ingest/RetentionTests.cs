using AnomalyMonitor.Ingest;
using AnomalyMonitor.Tests.Support;

namespace AnomalyMonitor.Tests.Ingest;

/// <summary>processed/, rejected/ and state/quarantine stay within their age and size, oldest first, and a link is never followed.</summary>
public sealed class RetentionTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>The file system's clock: the times compared are the ones the kernel gave the files.</summary>
    private static DateTime Now => TimeProvider.System.GetUtcNow().UtcDateTime;

    private string Make(string relative, int bytes)
    {
        var path = Path.Combine(_dir.Path, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, new byte[bytes]);
        return path;
    }

    [Fact]
    public void Files_past_the_age_go_by_when_they_arrived_not_by_their_modification_time()
    {
        var kept = Path.Combine(_dir.Path, "processed");
        var a = Make("processed/normal/a.png", 10);
        var b = Make("processed/anomaly/b.png", 10);
        File.SetLastWriteTimeUtc(a, Now.AddYears(-2)); // copied in with its old time: it arrived just now
        var options = new KeptFolderOptions { MaxAge = TimeSpan.FromDays(30) };

        var early = KeptFolder.Prune(kept, options, Now.AddDays(29));
        Assert.Equal((0, 20L), (early.DeletedFiles, early.KeptBytes));
        Assert.True(File.Exists(a) && File.Exists(b));

        var late = KeptFolder.Prune(kept, options, Now.AddDays(31));
        Assert.Equal((2, 20L, 0L, 0), (late.DeletedFiles, late.DeletedBytes, late.KeptBytes, late.Failures));
        Assert.False(File.Exists(a) || File.Exists(b));
        Assert.True(Directory.Exists(Path.Combine(kept, "normal")), "the folders themselves stay");
    }

    [Fact]
    public void Over_its_size_a_folder_loses_its_oldest_files_first_until_it_fits()
    {
        var files = Enumerable.Range(0, 5).Select(i => Make($"rejected/f{i}.png", 100)).ToList();
        var pass = KeptFolder.Prune(Path.Combine(_dir.Path, "rejected"), new KeptFolderOptions { MaxBytes = 250 }, Now);

        Assert.Equal((3, 300L, 200L), (pass.DeletedFiles, pass.DeletedBytes, pass.KeptBytes));
        Assert.Equal([false, false, false, true, true], files.Select(File.Exists));
        Assert.Equal(0, KeptFolder.Prune(Path.Combine(_dir.Path, "rejected"), new KeptFolderOptions { MaxBytes = 250 }, Now).DeletedFiles);
    }

    [Fact]
    public void A_link_is_removed_as_a_link_and_what_it_points_to_is_never_touched()
    {
        var precious = Make("elsewhere/precious.dat", 1000);
        var rejected = Path.Combine(_dir.Path, "rejected");
        Directory.CreateDirectory(rejected);
        File.CreateSymbolicLink(Path.Combine(rejected, "to-dir"), Path.GetDirectoryName(precious)!);
        File.CreateSymbolicLink(Path.Combine(rejected, "to-file"), precious);

        var pass = KeptFolder.Prune(rejected, new KeptFolderOptions { MaxBytes = 1 }, Now);

        Assert.Equal(2, pass.DeletedFiles);
        Assert.Empty(Directory.GetFileSystemEntries(rejected));
        Assert.True(File.Exists(precious));
        Assert.Equal(1000, new FileInfo(precious).Length);
    }

    [Fact]
    public void A_folder_without_limits_or_not_made_yet_is_left_as_it_is()
    {
        var f = Make("quarantine/x.bin", 10);
        Assert.Equal(default, KeptFolder.Prune(Path.GetDirectoryName(f)!, new KeptFolderOptions(), Now.AddYears(5)));
        Assert.True(File.Exists(f));
        var missing = KeptFolder.Prune(Path.Combine(_dir.Path, "never-made"), new KeptFolderOptions { MaxBytes = 1 }, Now);
        Assert.Equal((0, 0), (missing.DeletedFiles, missing.Failures));
    }

    [Fact]
    public async Task The_service_keeps_processed_rejected_and_quarantine_within_their_limits_and_counts_what_it_deleted()
    {
        Make("inbox/processed/normal/old.png", 100);
        Make("inbox/rejected/bad.png", 100);
        Make("inbox/rejected/bad.png.reason.txt", 20);
        Make("state/quarantine/m.0123.bin", 100);
        Make("state/quarantine/m.0123.reason.txt", 20);
        TestModel.CopyTo(Path.Combine(_dir.Path, "models"));
        await using var service = await TestService.StartAsync(_dir.Path, new Dictionary<string, string?>
        {
            ["Ingest:Retention:Processed:MaxBytes"] = "1",
            ["Ingest:Retention:Rejected:MaxBytes"] = "1",
            ["Ingest:Retention:Quarantine:MaxBytes"] = "1",
        });
        var retention = service.App.Services.GetRequiredServiceOf<RetentionService>();
        await Wait.UntilAsync(() => retention.Passes >= 1, "the first retention pass");

        var m = service.Metrics;
        Assert.Equal((1, 100), (m.RetentionDeletedFiles.WithLabels("processed").Value, m.RetentionDeletedBytes.WithLabels("processed").Value));
        Assert.Equal((2, 120), (m.RetentionDeletedFiles.WithLabels("rejected").Value, m.RetentionDeletedBytes.WithLabels("rejected").Value));
        Assert.Equal((2, 120), (m.RetentionDeletedFiles.WithLabels("quarantine").Value, m.RetentionDeletedBytes.WithLabels("quarantine").Value));
        Assert.Equal(0, m.RetentionKeptBytes.WithLabels("quarantine").Value);
        Assert.Empty(Directory.GetFiles(Path.Combine(_dir.Path, "state", "quarantine")));
        Assert.Empty(Directory.GetFiles(Path.Combine(_dir.Path, "inbox", "rejected")));
    }
}
