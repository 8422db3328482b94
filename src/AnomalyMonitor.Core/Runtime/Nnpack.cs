using System.Runtime.InteropServices;

namespace AnomalyMonitor.Core.Runtime;

/// <summary>
/// libtorch 2.10 tries to initialise NNPACK again at every small-batch convolution where it cannot (on an AMD
/// EPYC of family 26: "Could not initialize NNPACK! Reason: Unsupported hardware"), and warns each time: two
/// lines per single-image forward, about 400 a second in the journal at a tenth of the service's capacity.
/// Even asking once whether it is available writes that line to every command's stderr, so NNPACK is simply
/// switched off: libtorch then picks oneDNN or its own kernels, as it does for every batch of 16 or more.
/// TorchSharp exposes no switch for it, so the call goes through libtorch's C++ symbols.
/// </summary>
public static partial class Nnpack
{
    private const string Library = "libtorch_cpu";

    /// <summary>Switches NNPACK off; false where this libtorch build lacks the symbols (its setting then stays).</summary>
    public static bool TryDisable()
    {
        try
        {
            SetUserEnabledNnpack(GlobalContext(), false);
            return true;
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
        {
            return false;
        }
    }

    /// <summary>libtorch's own switch (at::globalContext().userEnabledNNPACK()).</summary>
    public static bool Enabled => UserEnabledNnpack(GlobalContext());

    [LibraryImport(Library, EntryPoint = "_ZN2at13globalContextEv")]
    private static partial IntPtr GlobalContext();

    [LibraryImport(Library, EntryPoint = "_ZN2at7Context20setUserEnabledNNPACKEb")]
    private static partial void SetUserEnabledNnpack(IntPtr context, [MarshalAs(UnmanagedType.U1)] bool enabled);

    [LibraryImport(Library, EntryPoint = "_ZNK2at7Context17userEnabledNNPACKEv")]
    [return: MarshalAs(UnmanagedType.U1)]
    private static partial bool UserEnabledNnpack(IntPtr context);
}
