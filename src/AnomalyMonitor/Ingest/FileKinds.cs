using System.Runtime.InteropServices;

namespace AnomalyMonitor.Ingest;

/// <summary>What a directory entry is, without following it if it is a link and without opening it.</summary>
/// <summary>What <see cref="FileKinds.Describe"/> read; the default is a missing entry.</summary>
public readonly record struct EntryInfo(FileKind Kind, long Size, DateTime ChangedUtc);

public enum FileKind
{
    Missing,
    Regular,
    Directory,
    SymbolicLink,
    Fifo,
    Socket,
    Device,
}

/// <summary>
/// Tells a regular file from a named pipe, a socket, a device or a link. .NET reports all of the first four
/// as "Normal", and opening a named pipe to find out blocks until a writer appears, so this asks the kernel
/// directly: statx(2) with AT_SYMLINK_NOFOLLOW, whose buffer has the same layout on every Linux architecture
/// (unlike struct stat). Elsewhere, or on a C library without statx, it falls back to what .NET can tell.
/// </summary>
public static partial class FileKinds
{
    private const int AtFdCwd = -100;
    private const int AtSymlinkNoFollow = 0x100;
    private const uint StatxType = 0x1, StatxCtime = 0x80, StatxSize = 0x200;
    private const int ENOENT = 2, ENOTDIR = 20;

    private static bool _statxMissing = !OperatingSystem.IsLinux();

    public static FileKind Of(string path) => Describe(path).Kind;

    /// <summary>
    /// The entry's kind, size and inode change time (ctime: a rename into a folder sets it, so it says when the
    /// entry arrived there, where the modification time may be years older), without following a link.
    /// </summary>
    public static EntryInfo Describe(string path)
    {
        if (!_statxMissing)
        {
            try
            {
                if (Statx(AtFdCwd, path, AtSymlinkNoFollow, StatxType | StatxSize | StatxCtime, out var b) == 0)
                    return new(FromMode(b.Mode), (long)b.Size, DateTime.UnixEpoch.AddTicks(b.CtimeSeconds * TimeSpan.TicksPerSecond + b.CtimeNanoseconds / 100));
                int errno = Marshal.GetLastPInvokeError();
                if (errno is ENOENT or ENOTDIR) return default;
                throw new IOException($"statx '{path}' failed with errno {errno}.");
            }
            catch (EntryPointNotFoundException)
            {
                _statxMissing = true;
            }
        }
        var info = new FileInfo(path);
        if (info.LinkTarget is not null) return new(FileKind.SymbolicLink, 0, info.LastWriteTimeUtc);
        if (Directory.Exists(path)) return new(FileKind.Directory, 0, Directory.GetLastWriteTimeUtc(path));
        return info.Exists ? new(FileKind.Regular, info.Length, info.LastWriteTimeUtc) : default;
    }

    internal static FileKind FromMode(ushort mode) => (mode & 0xF000) switch
    {
        0x8000 => FileKind.Regular,
        0x4000 => FileKind.Directory,
        0xA000 => FileKind.SymbolicLink,
        0x1000 => FileKind.Fifo,
        0xC000 => FileKind.Socket,
        0x2000 or 0x6000 => FileKind.Device,
        _ => FileKind.Device,
    };

    /// <summary>The metric label and log word for a kind.</summary>
    public static string Name(this FileKind kind) => kind switch
    {
        FileKind.SymbolicLink => "symlink",
        _ => kind.ToString().ToLowerInvariant(),
    };

    // struct statx (linux/stat.h): 256 bytes; stx_mode is the u16 at offset 28, stx_size the u64 at 40, and
    // stx_ctime a statx_timestamp (i64 seconds, u32 nanoseconds) at 96.
    [StructLayout(LayoutKind.Explicit, Size = 256)]
    private struct StatxBuffer
    {
        [FieldOffset(28)] public ushort Mode;
        [FieldOffset(40)] public ulong Size;
        [FieldOffset(96)] public long CtimeSeconds;
        [FieldOffset(104)] public uint CtimeNanoseconds;
    }

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Statx(int dirfd, string path, int flags, uint mask, out StatxBuffer buffer);
}
