using TorchSharp;

namespace AnomalyMonitor.Core.Runtime;

/// <summary>Thrown when libtorch cannot be loaded; its message is one sentence that a user can act on.</summary>
public sealed class TorchUnavailableException : Exception
{
    public TorchUnavailableException(string message, Exception inner) : base(message, inner) { }
    public TorchUnavailableException(string message) : base(message) { }
    public TorchUnavailableException() { }
}

/// <summary>Loads TorchSharp's native libraries once and picks the compute device.</summary>
public static class TorchRuntime
{
    private static readonly Lazy<Exception?> LoadError = new(TryLoad);

    /// <summary>Fails with a plain sentence, not a native stack trace, when libtorch cannot be loaded.</summary>
    public static void EnsureLoaded()
    {
        if (LoadError.Value is { } error)
        {
            string hint = error.ToString().Contains("GLIBCXX", StringComparison.Ordinal)
                ? "this system's libstdc++ is older than TorchSharp needs; run the tool from the output of `dotnet build`/`dotnet publish` of this repository, which patches the library, or install GCC 13's libstdc++"
                : "check that the build output contains runtimes/linux-x64/native/libtorch*.so (a CPU build) or that the CUDA libraries are installed (a GPU build)";
            throw new TorchUnavailableException($"TorchSharp's native library could not be loaded ({FirstLine(error)}): {hint}.", error);
        }
    }

    /// <summary>
    /// Resolves "auto", "cpu", "cuda" or "cuda:N". "auto" takes CUDA when it is available. The second
    /// value says in words what was picked, for the log.
    /// </summary>
    public static (torch.Device Device, string Description) ResolveDevice(string requested)
    {
        EnsureLoaded();
        var text = (requested ?? "auto").Trim().ToLowerInvariant();
        bool cuda = torch.cuda.is_available();
        if (text is "auto" or "")
        {
            return cuda
                ? (torch.CUDA, $"auto: CUDA is available ({torch.cuda.device_count()} device(s)), using cuda:0")
                : (torch.CPU, "auto: CUDA is not available, using the CPU" + CpuKernels);
        }
        if (text == "cpu") return (torch.CPU, "cpu (as configured)" + CpuKernels);
        if (text.StartsWith("cuda", StringComparison.Ordinal))
        {
            if (!cuda)
                throw new ArgumentException($"Device '{requested}' was requested but CUDA is not available (a CPU build, or no GPU/driver); use 'auto' or 'cpu'.");
            int index = 0;
            if (text.Length > 4 && (text[4] != ':' || !int.TryParse(text[5..], out index)))
                throw new ArgumentException($"Device '{requested}' is not of the form cuda:N.");
            if (index >= torch.cuda.device_count())
                throw new ArgumentException($"Device '{requested}' does not exist; this machine has {torch.cuda.device_count()} CUDA device(s).");
            return (torch.device(DeviceType.CUDA, index), $"cuda:{index} (as configured)");
        }
        throw new ArgumentException($"Device '{requested}' is not one of auto, cpu, cuda or cuda:N.");
    }

    /// <summary>
    /// libtorch's own thread count, read once when this class loads the library (a count set through TorchSharp before
    /// that, which the service never does, would be taken as the default). Read later, get_num_threads() is not it: a thread
    /// that never set a count takes the last one set on any thread (a scoring lane's 1, a retraining's 1), and a
    /// service started after that would score every batch on one thread and never use its second lane.
    /// </summary>
    public static int DefaultThreads
    {
        get
        {
            EnsureLoaded();
            return _defaultThreads;
        }
    }

    private static int _defaultThreads = 1;

    private static string CpuKernels => OneDnn.Cap is { } cap ? $"; oneDNN kernels up to {cap} ({OneDnn.Variable})" : "";

    public static string TorchSharpVersion =>
        typeof(torch).Assembly.GetName().Version?.ToString() ?? "unknown";

    private static Exception? TryLoad()
    {
        try
        {
            // The first call into libtorch loads the native libraries.
            torch.InitializeDeviceType(DeviceType.CPU);
            using var probe = torch.zeros(1);
            _defaultThreads = Math.Max(1, torch.get_num_threads());
            Nnpack.TryDisable();
            return null;
        }
        catch (Exception e) when (e is TypeInitializationException or DllNotFoundException or NotSupportedException or BadImageFormatException or EntryPointNotFoundException or InvalidOperationException)
        {
            return e;
        }
    }

    private static string FirstLine(Exception e)
    {
        while (e.InnerException is not null) e = e.InnerException;
        var line = e.Message.Split('\n')[0].Trim();
        return line.Length > 200 ? line[..200] + "…" : line;
    }
}
