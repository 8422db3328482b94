using System.Runtime.InteropServices;

namespace AnomalyMonitor.Ingest;

/// <summary>What a directory entry is, without following it if it is a link and without opening it.</summary>
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
    private const uint StatxType = 0x1;
    private const int ENOENT = 2, ENOTDIR = 20;

    private static bool _statxMissing = !OperatingSystem.IsLinux();

    public static FileKind Of(string path)
    {
        if (!_statxMissing)
        {
            try
            {
                if (Statx(AtFdCwd, path, AtSymlinkNoFollow, StatxType, out var buffer) == 0) return FromMode(buffer.Mode);
                int errno = Marshal.GetLastPInvokeError();
                if (errno is ENOENT or ENOTDIR) return FileKind.Missing;
                throw new IOException($"statx '{path}' failed with errno {errno}.");
            }
            catch (EntryPointNotFoundException)
            {
                _statxMissing = true;
            }
        }
        var info = new FileInfo(path);
        if (info.LinkTarget is not null) return FileKind.SymbolicLink;
        if (Directory.Exists(path)) return FileKind.Directory;
        return info.Exists ? FileKind.Regular : FileKind.Missing;
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

    // struct statx (linux/stat.h): 256 bytes; stx_mode is the u16 at offset 28.
    [StructLayout(LayoutKind.Explicit, Size = 256)]
    private struct StatxBuffer
    {
        [FieldOffset(28)] public ushort Mode;
    }

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Statx(int dirfd, string path, int flags, uint mask, out StatxBuffer buffer);
}
