using System.Runtime.InteropServices;

namespace AnomalyMonitor.Ingest;

/// <summary>
/// Moves a file without ever replacing one at the target, in one atomic rename: renameat2(2) with
/// RENAME_NOREPLACE. .NET's File.Move(overwrite: false) keeps the same promise on Linux with link(2) and then
/// unlink(2), two journaled metadata writes instead of one (on this machine's ext4: 39–50 µs of CPU a file
/// against 27–34 µs), and the folder source moves every file twice. Where the kernel, the file system or the C
/// library lacks the call, it falls back to File.Move.
/// </summary>
public static partial class NoReplaceMove
{
    private const int AtFdCwd = -100;
    private const uint RenameNoReplace = 1;
    private const int EPERM = 1, ENOENT = 2, EACCES = 13, EEXIST = 17, EXDEV = 18, EINVAL = 22, ENOSYS = 38, ENOTDIR = 20;

    private static bool _unsupported = !OperatingSystem.IsLinux();

    /// <summary>False when something already exists at the target; otherwise moved, or an exception as File.Move throws.</summary>
    public static bool TryMove(string source, string target)
    {
        if (!_unsupported)
        {
            try
            {
                if (RenameAt2(AtFdCwd, source, AtFdCwd, target, RenameNoReplace) == 0) return true;
                int errno = Marshal.GetLastPInvokeError();
                switch (errno)
                {
                    case EEXIST:
                        return false;
                    case ENOENT or ENOTDIR:
                        throw new FileNotFoundException($"Could not move '{source}' to '{target}': {Marshal.GetPInvokeErrorMessage(errno)}.", source);
                    case EACCES or EPERM:
                        throw new UnauthorizedAccessException($"Could not move '{source}' to '{target}': {Marshal.GetPInvokeErrorMessage(errno)}.");
                    case EINVAL or ENOSYS or EXDEV:
                        break; // the flag unsupported here, or another file system: File.Move knows what to do
                    default:
                        throw new IOException($"Could not move '{source}' to '{target}': {Marshal.GetPInvokeErrorMessage(errno)}.");
                }
            }
            catch (EntryPointNotFoundException)
            {
                _unsupported = true;
            }
        }
        if (Path.Exists(target)) return false;
        try
        {
            File.Move(source, target);
            return true;
        }
        catch (IOException) when (Path.Exists(target) && File.Exists(source))
        {
            return false; // another writer took the name between the check and the move
        }
    }

    [LibraryImport("libc", EntryPoint = "renameat2", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int RenameAt2(int oldDirFd, string oldPath, int newDirFd, string newPath, uint flags);
}
