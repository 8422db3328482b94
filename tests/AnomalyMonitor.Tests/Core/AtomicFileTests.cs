using AnomalyMonitor.Core.Storage;
using AnomalyMonitor.Tests.Support;

namespace AnomalyMonitor.Tests.Core;

/// <summary>A write that fails leaves neither a half-written file nor its temporary one behind.</summary>
public sealed class AtomicFileTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void A_failed_write_of_either_kind_leaves_no_temporary_file()
    {
        // A directory where the file goes: the final rename fails, as a full disk fails an earlier step.
        var target = _dir.File("judge-state.json");
        Directory.CreateDirectory(target);

        Assert.ThrowsAny<IOException>(() => AtomicFile.Write(target, "{}"u8));
        Assert.ThrowsAny<IOException>(() => AtomicFile.Write(target, temp => File.WriteAllText(temp, "{}")));

        Assert.Equal([target], Directory.GetFileSystemEntries(_dir.Path));
        AtomicFile.Write(_dir.File("ok.json"), "{}"u8);
        Assert.Equal("{}", File.ReadAllText(_dir.File("ok.json")));
        Assert.Equal(2, Directory.GetFileSystemEntries(_dir.Path).Length);
    }
}
