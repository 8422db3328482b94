using System.Runtime.InteropServices;

namespace AnomalyMonitor.Core.Runtime;

/// <summary>
/// libtorch 2.10 tries to initialise NNPACK again at every small-batch convolution where it cannot (on an AMD
/// EPYC of family 26: "Could not initialize NNPACK! Reason: Unsupported hardware"), and warns each time: two
/// lines per single-image forward, about 400 a second in the journal at a tenth of the service's capacity.
/// Asking once and switching NNPACK off where it is unavailable leaves one such line per process, and changes
/// nothing where NNPACK works. TorchSharp exposes neither call, so they go through libtorch's C++ symbols.
/// </summary>
public static partial class Nnpack
{
    private const string Library = "libtorch_cpu";

    /// <summary>Whether NNPACK could be initialised; when not, libtorch is told not to try it again.</summary>
    public static bool DisableIfUnavailable()
    {
        try
        {
            if (Available()) return true;
            SetUserEnabledNnpack(GlobalContext(), false);
            return false;
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
        {
            return true; // another libtorch build: leave its NNPACK setting alone rather than fail to load
        }
    }

    /// <summary>libtorch's own switch (at::globalContext().userEnabledNNPACK()).</summary>
    public static bool Enabled => UserEnabledNnpack(GlobalContext());

    [LibraryImport(Library, EntryPoint = "_ZN2at6native17_nnpack_availableEv")]
    [return: MarshalAs(UnmanagedType.U1)]
    private static partial bool Available();

    [LibraryImport(Library, EntryPoint = "_ZN2at13globalContextEv")]
    private static partial IntPtr GlobalContext();

    [LibraryImport(Library, EntryPoint = "_ZN2at7Context20setUserEnabledNNPACKEb")]
    private static partial void SetUserEnabledNnpack(IntPtr context, [MarshalAs(UnmanagedType.U1)] bool enabled);

    [LibraryImport(Library, EntryPoint = "_ZNK2at7Context17userEnabledNNPACKEv")]
    [return: MarshalAs(UnmanagedType.U1)]
    private static partial bool UserEnabledNnpack(IntPtr context);
}
