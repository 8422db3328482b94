namespace AnomalyMonitor.Core.Imaging;

/// <summary>Why an input was refused. The names are stable: they label the rejected-input metric.</summary>
public enum RejectReason
{
    Empty,
    Truncated,
    Corrupt,
    Unsupported,
    TooLarge,
    WrongDimensions,
    /// <summary>A symbolic link in a watched folder: never followed, so never read.</summary>
    SymbolicLink,
    /// <summary>The file exists but cannot be opened (permissions).</summary>
    Unreadable,
    /// <summary>Judging it failed again and again (not the input's format: the pipeline's error is in the detail).</summary>
    Failed,
}

public static class RejectReasonNames
{
    public static string Name(this RejectReason reason) => reason switch
    {
        RejectReason.Empty => "empty",
        RejectReason.Truncated => "truncated",
        RejectReason.Corrupt => "corrupt",
        RejectReason.Unsupported => "unsupported",
        RejectReason.TooLarge => "too_large",
        RejectReason.WrongDimensions => "wrong_dimensions",
        RejectReason.SymbolicLink => "symlink",
        RejectReason.Unreadable => "unreadable",
        RejectReason.Failed => "failed",
        _ => reason.ToString(),
    };
}

/// <summary>An input that cannot be used, with the item it came from and the reason in plain words.</summary>
public sealed class InputRejectedException : Exception
{
    public InputRejectedException(string item, RejectReason reason, string detail)
        : base($"{item}: {reason.Name()}: {detail}")
    {
        Item = item;
        Reason = reason;
        Detail = detail;
    }

    public InputRejectedException() : this("(unknown)", RejectReason.Corrupt, "unknown") { }

    public InputRejectedException(string message) : this("(unknown)", RejectReason.Corrupt, message) { }

    public InputRejectedException(string message, Exception inner) : base(message, inner)
    {
        Item = "(unknown)";
        Detail = message;
    }

    public string Item { get; }
    public RejectReason Reason { get; }
    public string Detail { get; }
}
