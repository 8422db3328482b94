using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace AnomalyMonitor.Core.Runtime;

/// <summary>
/// Caps libtorch's oneDNN CPU kernels at AVX unless the environment already names a cap. On some x86
/// machines (seen on an AMD EPYC of family 26 under a hypervisor) oneDNN's AVX2 and AVX-512 training
/// kernels return NaN in the first optimizer steps of a conv autoencoder, with one thread or two, while
/// its AVX kernels train correctly; inference was unaffected. The cap cost no measurable scoring speed
/// there, and nothing on CUDA. Set ONEDNN_MAX_CPU_ISA (e.g. ALL) to choose otherwise.
/// </summary>
public static partial class OneDnn
{
    public const string Variable = "ONEDNN_MAX_CPU_ISA";
    private const string LegacyVariable = "DNNL_MAX_CPU_ISA";
    public const string DefaultCap = "AVX";

    /// <summary>The cap in force for this process ("AVX", or what the environment set), or null off x86 Linux.</summary>
    public static string? Cap { get; private set; }

    // oneDNN reads the variable once, at its first kernel; a module initializer runs before any code of
    // this assembly, so before any model of it is built. .NET's own environment block is not libc's, hence setenv.
    [ModuleInitializer]
    [SuppressMessage("Usage", "CA2255", Justification = "Every host (service, CLI, tests, benchmarks) must get the cap before its first kernel.")]
    internal static void ApplyDefaultCap()
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64) return;
        // oneDNN takes an empty value as unset, so a blank one is replaced too.
        var set = new[] { Variable, LegacyVariable }.Select(Environment.GetEnvironmentVariable).FirstOrDefault(v => !string.IsNullOrWhiteSpace(v));
        if (set is not null)
        {
            Cap = set;
            return;
        }
        if (SetEnv(Variable, DefaultCap, 1) == 0) Cap = DefaultCap;
    }

    /// <summary>What libc's environment, the one oneDNN reads, holds for <see cref="Variable"/>.</summary>
    public static string? NativeValue() => Marshal.PtrToStringUTF8(GetEnv(Variable));

    [LibraryImport("libc", EntryPoint = "getenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial IntPtr GetEnv(string name);

    [LibraryImport("libc", EntryPoint = "setenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int SetEnv(string name, string value, int overwrite);
}
