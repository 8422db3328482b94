using System.Runtime.InteropServices;
using System.Text;

namespace AnomalyMonitor.Ingest;

/// <summary>
/// Entries whose name is not valid UTF-8 (a camera or a Windows share writing Latin-1, say). .NET reads such a
/// name with U+FFFD in place of the bad bytes, and that path names nothing: the file could not be opened, moved
/// or reported, and would sit in the inbox for ever, unjudged. This lists the names as bytes with readdir(3) and
/// renames each, in place, to a valid name with the bad bytes written as %XX, so the folder takes it like any
/// other file. Linux only: elsewhere file names are not bytes.
/// </summary>
public static partial class UndecodableNames
{
    private const int AtFdCwd = -100;
    private const uint RenameNoReplace = 1;
    private const int ENOENT = 2, EEXIST = 17, EINVAL = 22, ENOSYS = 38;
    // struct dirent on 64-bit glibc and musl alike: d_ino (8), d_off (8), d_reclen (2), d_type (1), then d_name.
    private const int NameOffset = 19;

    private static readonly UTF8Encoding Strict = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>The names in <paramref name="directory"/> that are not valid UTF-8, as bytes.</summary>
    public static List<byte[]> In(string directory)
    {
        var found = new List<byte[]>();
        if (!OperatingSystem.IsLinux() || !Environment.Is64BitProcess) return found;
        var dir = OpenDir(directory);
        if (dir == IntPtr.Zero) throw new IOException($"opendir '{directory}' failed: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}.");
        try
        {
            for (var entry = ReadDir(dir); entry != IntPtr.Zero; entry = ReadDir(dir))
            {
                var name = ReadName(entry + NameOffset);
                if (!IsUtf8(name)) found.Add(name);
            }
        }
        finally
        {
            _ = CloseDir(dir);
        }
        return found;
    }

    /// <summary>
    /// Renames the entry to its escaped name (a numbered one if that is taken) and returns the new path; null
    /// when it went away first.
    /// </summary>
    public static string? Rename(string directory, byte[] name)
    {
        var source = Terminated([.. Encoding.UTF8.GetBytes(Path.TrimEndingDirectorySeparator(directory)), (byte)'/', .. name]);
        var escaped = EscapedName(name);
        for (int i = 0; ; i++)
        {
            var candidate = i == 0 ? escaped : $"{Path.GetFileNameWithoutExtension(escaped)}.{i}{Path.GetExtension(escaped)}";
            var target = Path.Combine(directory, candidate);
            var targetBytes = Terminated(Encoding.UTF8.GetBytes(target));
            if (RenameAt2(AtFdCwd, source, AtFdCwd, targetBytes, RenameNoReplace) == 0) return target;
            int errno = Marshal.GetLastPInvokeError();
            if (errno == EEXIST) continue;
            if (errno is EINVAL or ENOSYS)
            {
                // No RENAME_NOREPLACE on this file system or kernel: check, then a plain rename (a narrow race).
                if (Path.Exists(target)) continue;
                if (PlainRename(source, targetBytes) == 0) return target;
                errno = Marshal.GetLastPInvokeError();
            }
            if (errno == ENOENT) return null; // taken or removed meanwhile
            throw new IOException($"Could not rename '{escaped}' (a name that is not UTF-8) to '{candidate}': {Marshal.GetPInvokeErrorMessage(errno)}.");
        }
    }

    /// <summary>Linux allows 255 bytes a name; this leaves room for a ".N" suffix when the name is taken.</summary>
    internal const int MaxName = 240;

    /// <summary>
    /// The escaped name, or, when escaping (three bytes for each bad one) would pass <see cref="MaxName"/>, its
    /// head, '~' and a hash of the original bytes, with the extension kept: still unique, still legal.
    /// </summary>
    public static string EscapedName(ReadOnlySpan<byte> name)
    {
        var escaped = Escape(name);
        if (escaped.Length <= MaxName) return escaped; // ASCII only: a character is a byte
        var extension = Path.GetExtension(escaped);
        if (extension.Length > 16) extension = "";
        var hash = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(name))[..16];
        var head = escaped[..(MaxName - extension.Length - hash.Length - 1)];
        int cut = head.LastIndexOf('%');
        if (cut >= 0 && cut > head.Length - 3) head = head[..cut]; // never half an escape
        return $"{head}~{hash}{extension}";
    }

    /// <summary>Printable ASCII stays; every other byte, and '%' itself, becomes %XX, so the original bytes can be read back.</summary>
    public static string Escape(ReadOnlySpan<byte> name)
    {
        var s = new StringBuilder(name.Length * 2);
        foreach (var b in name)
            if (b is >= 0x20 and < 0x7F && b != '%') s.Append((char)b);
            else s.Append('%').Append(b.ToString("X2"));
        return s.ToString();
    }

    private static bool IsUtf8(byte[] name)
    {
        try { Strict.GetCharCount(name); return true; }
        catch (DecoderFallbackException) { return false; }
    }

    private static unsafe byte[] ReadName(IntPtr p) => new ReadOnlySpan<byte>((byte*)p, 256).IndexOf((byte)0) is var n and >= 0
        ? new ReadOnlySpan<byte>((byte*)p, n).ToArray()
        : new ReadOnlySpan<byte>((byte*)p, 256).ToArray();

    private static byte[] Terminated(byte[] path) => [.. path, 0];

    [LibraryImport("libc", EntryPoint = "opendir", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial IntPtr OpenDir(string path);

    [LibraryImport("libc", EntryPoint = "readdir", SetLastError = true)]
    private static partial IntPtr ReadDir(IntPtr dir);

    [LibraryImport("libc", EntryPoint = "closedir")]
    private static partial int CloseDir(IntPtr dir);

    [LibraryImport("libc", EntryPoint = "rename", SetLastError = true)]
    private static partial int PlainRename(byte[] oldPath, byte[] newPath);

    [LibraryImport("libc", EntryPoint = "renameat2", SetLastError = true)]
    private static partial int RenameAt2(int oldDirFd, byte[] oldPath, int newDirFd, byte[] newPath, uint flags);
}
