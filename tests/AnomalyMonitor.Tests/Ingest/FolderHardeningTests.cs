using System.Net.Sockets;
using AnomalyMonitor.Ingest;
using AnomalyMonitor.Tests.Support;

namespace AnomalyMonitor.Tests.Ingest;

/// <summary>
/// Entries in the watched folder that are not plain image files: none may stall the source, be read
/// through a link, or be lost. Every case ends with a normal file dropped afterwards that is judged.
/// </summary>
public sealed class FolderHardeningTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private string Inbox => Path.Combine(_dir.Path, "inbox");
    private string In(params string[] parts) => Path.Combine([Inbox, .. parts]);

    private async Task<(TestService Service, LogCapture Logs)> StartAsync(string? folder = null)
    {
        TestModel.CopyTo(Path.Combine(_dir.Path, "models"));
        var logs = new LogCapture();
        var settings = new Dictionary<string, string?> { ["Logging:LogLevel:Default"] = "Information" };
        if (folder is not null) settings["Ingest:Folder:Path"] = folder;
        var service = await TestService.StartAsync(_dir.Path, settings, logs.Attach);
        return (service, logs);
    }

    private static FolderSource Folder(TestService service) => service.App.Services.GetRequiredServiceOf<FolderSource>();

    private static async Task MakeFifoAsync(string path)
    {
        var (code, output) = await Tool.RunAsync("mkfifo", $"\"{path}\"");
        Assert.True(code == 0, "mkfifo: " + output);
    }

    private static void MakeFifo(string path)
    {
        using var p = System.Diagnostics.Process.Start("mkfifo", [path])!;
        p.WaitForExit();
        Assert.Equal(0, p.ExitCode);
    }

    /// <summary>A normal image dropped after the case is judged and moved: the source was not stalled.</summary>
    private async Task ANormalFileAfterwardsIsJudgedAsync(TestService service, string name = "after.png")
    {
        File.WriteAllBytes(In(name), TestModel.NormalPng(7));
        await Wait.UntilAsync(() => File.Exists(In("processed", "normal", name)), $"{name} judged after the case");
    }

    /// <summary>Waits until the source has looked at the whole folder twice more, so a repeated report would have happened.</summary>
    private static async Task TwoMoreRescansAsync(TestService service)
    {
        long seen = Folder(service).Rescans;
        await Wait.UntilAsync(() => Folder(service).Rescans >= seen + 2, "two more rescans");
    }

    [Fact]
    public async Task The_kind_of_an_entry_is_read_without_following_or_opening_it()
    {
        File.WriteAllText(_dir.File("regular"), "x");
        Directory.CreateDirectory(_dir.File("dir"));
        File.CreateSymbolicLink(_dir.File("link"), "/etc/passwd");
        File.CreateSymbolicLink(_dir.File("dangling"), _dir.File("nothing-here"));
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        socket.Bind(new UnixDomainSocketEndPoint(_dir.File("socket")));
        await MakeFifoAsync(_dir.File("fifo"));

        Assert.Equal(FileKind.Regular, FileKinds.Of(_dir.File("regular")));
        Assert.Equal(FileKind.Directory, FileKinds.Of(_dir.File("dir")));
        Assert.Equal(FileKind.SymbolicLink, FileKinds.Of(_dir.File("link")));
        Assert.Equal(FileKind.SymbolicLink, FileKinds.Of(_dir.File("dangling")));
        Assert.Equal(FileKind.Socket, FileKinds.Of(_dir.File("socket")));
        Assert.Equal(FileKind.Fifo, FileKinds.Of(_dir.File("fifo")));
        Assert.Equal(FileKind.Device, FileKinds.Of("/dev/null"));
        Assert.Equal(FileKind.Missing, FileKinds.Of(_dir.File("missing")));
    }

    [Fact]
    public async Task A_named_pipe_is_left_alone_logged_once_and_counted_and_does_not_stall_the_folder()
    {
        var (service, logs) = await StartAsync();
        await using var _ = service;
        await MakeFifoAsync(In("camera.png"));
        await ANormalFileAfterwardsIsJudgedAsync(service);
        await TwoMoreRescansAsync(service);

        Assert.Equal(FileKind.Fifo, FileKinds.Of(In("camera.png")));
        Assert.Empty(Directory.GetFileSystemEntries(In("processing")));
        Assert.Equal(1, service.Metrics.FolderSkipped.WithLabels("fifo").Value);
        Assert.Single(logs.Lines, l => l.Contains("camera.png", StringComparison.Ordinal) && l.Contains("is a fifo", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_socket_and_a_directory_are_left_alone_and_counted_once()
    {
        var (service, logs) = await StartAsync();
        await using var _ = service;
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        socket.Bind(new UnixDomainSocketEndPoint(In("listener.png")));
        Directory.CreateDirectory(In("photos"));
        File.WriteAllBytes(In("photos", "inside.png"), TestModel.NormalPng(1));
        await ANormalFileAfterwardsIsJudgedAsync(service);
        await TwoMoreRescansAsync(service);

        Assert.Equal(1, service.Metrics.FolderSkipped.WithLabels("socket").Value);
        Assert.Equal(1, service.Metrics.FolderSkipped.WithLabels("directory").Value);
        Assert.True(File.Exists(In("photos", "inside.png")), "the subfolder's content is not touched");
        Assert.Single(logs.Lines, l => l.Contains("listener.png", StringComparison.Ordinal));
        Assert.Single(logs.Lines, l => l.Contains("photos", StringComparison.Ordinal) && l.Contains("directory", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_symbolic_link_is_moved_to_rejected_without_being_followed()
    {
        var (service, _) = await StartAsync();
        await using var __ = service;
        // The links point at a named pipe: following either one would block the source for good.
        var pipe = _dir.File("elsewhere.fifo");
        await MakeFifoAsync(pipe);
        File.CreateSymbolicLink(In("to-pipe.png"), pipe);
        File.CreateSymbolicLink(In("passwd.png"), "/etc/passwd");
        await Wait.UntilAsync(() => File.Exists(In("rejected", "to-pipe.png.reason.txt")) && File.Exists(In("rejected", "passwd.png.reason.txt")), "both links rejected");
        await ANormalFileAfterwardsIsJudgedAsync(service);

        foreach (var name in new[] { "to-pipe.png", "passwd.png" })
        {
            Assert.Equal(FileKind.SymbolicLink, FileKinds.Of(In("rejected", name))); // the link itself moved, not a copy of its target
            var reason = File.ReadAllText(In("rejected", name + ".reason.txt"));
            Assert.Contains("symlink", reason);
            Assert.Contains("never followed", reason);
        }
        Assert.Equal(2, service.Metrics.Rejected.WithLabels("folder", "symlink").Value);
        Assert.Empty(Directory.GetFiles(Path.Combine(_dir.Path, "evidence"), "*", SearchOption.AllDirectories));
        Assert.Equal(FileKind.Fifo, FileKinds.Of(pipe));
    }

    [Fact]
    public async Task A_file_that_vanishes_between_claim_and_read_is_counted_and_the_folder_goes_on()
    {
        var (service, _) = await StartAsync();
        await using var __ = service;
        Folder(service).AfterClaim = claimed => { if (claimed.EndsWith("gone.png", StringComparison.Ordinal)) File.Delete(claimed); };
        File.WriteAllBytes(In("gone.png"), TestModel.NormalPng(2));
        await Wait.UntilAsync(() => service.Metrics.FolderSkipped.WithLabels("vanished").Value == 1, "the vanished file counted");
        await ANormalFileAfterwardsIsJudgedAsync(service);
        Assert.Empty(Directory.GetFileSystemEntries(In("processing")));
    }

    [Fact]
    public async Task A_file_swapped_for_a_named_pipe_after_the_claim_is_rejected_without_a_hang()
    {
        var (service, _) = await StartAsync();
        await using var __ = service;
        Folder(service).AfterClaim = claimed =>
        {
            if (!claimed.EndsWith("swapped.png", StringComparison.Ordinal)) return;
            File.Delete(claimed);
            MakeFifo(claimed);
        };
        File.WriteAllBytes(In("swapped.png"), TestModel.NormalPng(3));
        await Wait.UntilAsync(() => File.Exists(In("rejected", "swapped.png.reason.txt")), "the swapped entry rejected");
        Assert.Contains("not a regular file", File.ReadAllText(In("rejected", "swapped.png.reason.txt")));
        await ANormalFileAfterwardsIsJudgedAsync(service);
        Assert.Empty(Directory.GetFileSystemEntries(In("processing")));
    }

    [Fact]
    public async Task A_recovery_at_start_that_fails_for_a_while_is_tried_again_and_the_file_left_in_processing_judged()
    {
        TestModel.CopyTo(Path.Combine(_dir.Path, "models"));
        Directory.CreateDirectory(In("processing"));
        File.WriteAllBytes(In("processing", "left.png"), TestModel.NormalPng(3)); // claimed before a crash
        var logs = new LogCapture();
        int failures = 2;
        await using var service = await TestService.StartAsync(_dir.Path, new Dictionary<string, string?> { ["Ingest:Folder:RescanInterval"] = "00:00:00.5" }, logs.Attach,
            beforeStart: app => app.Services.GetRequiredServiceOf<FolderSource>().RecoveryFault = () =>
            {
                // ESTALE cannot be produced on demand here: the hook throws what listing processing/ would.
                if (Interlocked.Decrement(ref failures) >= 0) throw new IOException("Stale file handle (injected)");
            });

        await Wait.UntilAsync(() => File.Exists(In("processed", "normal", "left.png")), "the recovered file judged");
        Assert.Equal(2, service.Metrics.SourceErrors.WithLabels("folder").Value);
        Assert.Equal(2, logs.Lines.Count(l => l.Contains("Stale file handle (injected)", StringComparison.Ordinal)));
        await ANormalFileAfterwardsIsJudgedAsync(service);
    }

    [Fact]
    public async Task A_folder_that_cannot_be_listed_for_a_while_is_logged_counted_and_watched_again()
    {
        var (service, logs) = await StartAsync();
        await using var _ = service;
        int failures = 3;
        // EIO or ESTALE cannot be produced on demand here: the hook throws what such a listing would.
        Folder(service).RescanFault = () =>
        {
            if (Interlocked.Decrement(ref failures) >= 0) throw new IOException("Input/output error (injected)");
        };
        await Wait.UntilAsync(() => Volatile.Read(ref failures) < 0, "three failed rescans");
        Assert.Equal(3, service.Metrics.SourceErrors.WithLabels("folder").Value);
        Assert.Equal(3, logs.Lines.Count(l => l.Contains("Input/output error (injected)", StringComparison.Ordinal) && l.Contains("tries again", StringComparison.Ordinal)));
        await ANormalFileAfterwardsIsJudgedAsync(service);
    }

    /// <summary>
    /// Moves each file into the inbox under a name given as printf(1) octal escapes: .NET cannot write a name that
    /// is not UTF-8 (its strings are UTF-16), so the shell does. Latin-1 'é' is the lone byte 0xE9, \\351.
    /// </summary>
    private async Task DropAsync(params (byte[] Content, string PrintfName)[] files)
    {
        var script = new System.Text.StringBuilder();
        for (int i = 0; i < files.Length; i++)
        {
            var staged = _dir.File($"staged-{i}");
            File.WriteAllBytes(staged, files[i].Content);
            script.Append($"mv '{staged}' \"$(printf '{Inbox}/{files[i].PrintfName}')\"\n");
        }
        var path = _dir.File("drop.sh");
        File.WriteAllText(path, script.ToString());
        var (code, output) = await Tool.RunAsync("sh", $"\"{path}\"");
        Assert.True(code == 0, "mv: " + output);
    }

    [Fact]
    public async Task A_name_that_is_not_UTF8_is_renamed_with_escapes_judged_and_counted_and_a_writers_temp_file_is_left_alone()
    {
        var (service, logs) = await StartAsync();
        await using var _ = service;
        await DropAsync((TestModel.NormalPng(5), "cam\\351ra.png"), (TestModel.NormalPng(6), ".up\\377.tmp"));

        await Wait.UntilAsync(() => File.Exists(In("processed", "normal", "cam%E9ra.png")), "the renamed file judged");
        await TwoMoreRescansAsync(service);
        Assert.Equal(1, service.Metrics.FolderRenamed.Value);
        Assert.Single(logs.Lines, l => l.Contains("cam%E9ra.png", StringComparison.Ordinal) && l.Contains("not valid UTF-8", StringComparison.Ordinal));
        var left = Assert.Single(UndecodableNames.In(Inbox));
        Assert.Equal(".up%FF.tmp", UndecodableNames.Escape(left));
        await ANormalFileAfterwardsIsJudgedAsync(service);
    }

    [Fact]
    public async Task A_non_UTF8_name_too_long_once_escaped_is_shortened_with_a_hash_and_judged()
    {
        var (service, logs) = await StartAsync();
        await using var _ = service;
        // 120 Latin-1 bytes: 360 characters escaped, past Linux's 255-byte names.
        await DropAsync((TestModel.NormalPng(5), string.Concat(Enumerable.Repeat("\\351", 120)) + ".png"));

        await Wait.UntilAsync(() => Directory.Exists(In("processed", "normal")) && Directory.GetFiles(In("processed", "normal")).Length == 1, "the renamed file judged");
        var name = Path.GetFileName(Directory.GetFiles(In("processed", "normal")).Single());
        Assert.Matches(@"^(%E9)+~[0-9a-f]{16}\.png$", name);
        Assert.True(name.Length <= UndecodableNames.MaxName, name);
        Assert.Equal(0, service.Metrics.SourceErrors.WithLabels("folder").Value);
        Assert.DoesNotContain(logs.Lines, l => l.Contains("could not go through", StringComparison.Ordinal));
        await ANormalFileAfterwardsIsJudgedAsync(service);
    }

    [Fact]
    public async Task A_folder_path_with_a_trailing_slash_is_watched_all_the_same()
    {
        var (service, _) = await StartAsync(folder: Inbox + "/");
        await using var _ = service;
        await ANormalFileAfterwardsIsJudgedAsync(service);
    }

    [Fact]
    public void Escapes_keep_printable_ASCII_and_write_every_other_byte_and_the_percent_sign_as_hex()
    {
        Assert.Equal("a-b_c.png", UndecodableNames.Escape("a-b_c.png"u8));
        Assert.Equal("100%25%E9%FF%0A.png", UndecodableNames.Escape([.. "100%"u8, 0xE9, 0xFF, 0x0A, .. ".png"u8]));
    }
}
