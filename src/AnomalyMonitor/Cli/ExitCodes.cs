namespace AnomalyMonitor.Cli;

/// <summary>Exit codes that scripts can rely on.</summary>
public static class ExitCodes
{
    public const int Ok = 0;
    /// <summary>Bad arguments, missing data or another error the message explains.</summary>
    public const int Error = 1;
    /// <summary>The command finished, but some inputs were rejected (each is named on stderr).</summary>
    public const int SomeInputsRejected = 2;
    /// <summary>TorchSharp or the model could not be loaded.</summary>
    public const int ModelUnavailable = 3;
    public const int Cancelled = 130;
}
