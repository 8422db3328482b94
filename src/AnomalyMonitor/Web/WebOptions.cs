using AnomalyMonitor.Configuration;
using Microsoft.Extensions.Options;

namespace AnomalyMonitor.Web;

public sealed class WebOptions
{
    public const string Section = "Web";
    public string Urls { get; set; } = "http://127.0.0.1:9464";
}

public sealed class ApiOptions
{
    public const string Section = "Api";
    /// <summary>Bearer token for feedback, retraining and rollback. Prefer TokenFile (or the environment) over a token in a file under /etc.</summary>
    public string? Token { get; set; }
    /// <summary>File holding the token; relative paths are looked up in systemd's credentials directory. Neither set: one is generated in the state directory.</summary>
    public string? TokenFile { get; set; }
    /// <summary>The largest body POST /api/score takes (413 above it).</summary>
    public long MaxScoreBytes { get; set; } = 16L * 1024 * 1024;
    /// <summary>The bodies POST /api/score holds at once, counted by Content-Length (MaxScoreBytes for a chunked one); 503 above it.</summary>
    public long MaxScoreInFlightBytes { get; set; } = 256L * 1024 * 1024;
}

internal sealed class WebOptionsValidator : IValidateOptions<WebOptions>
{
    public ValidateOptionsResult Validate(string? name, WebOptions o)
    {
        var f = new List<string>();
        foreach (var url in (o.Urls ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries))
            if (!Uri.TryCreate(url.Replace("*", "0.0.0.0", StringComparison.Ordinal), UriKind.Absolute, out var u) || u.Scheme is not ("http" or "https"))
                f.Add($"Web:Urls: '{url}' is not an http(s) URL.");
        return OptionChecks.Result(f);
    }
}

internal sealed class ApiOptionsValidator : IValidateOptions<ApiOptions>
{
    public ValidateOptionsResult Validate(string? name, ApiOptions o)
    {
        var f = new List<string>();
        if (o.Token is { } t && t.Trim().Length < 16) f.Add("Api:Token must be at least 16 characters; generate one with `openssl rand -hex 32`.");
        if (!string.IsNullOrEmpty(o.Token) && !string.IsNullOrEmpty(o.TokenFile)) f.Add("Set Api:Token or Api:TokenFile, not both.");
        if (o.MaxScoreBytes < 1) f.Add("Api:MaxScoreBytes must be positive.");
        if (o.MaxScoreInFlightBytes < o.MaxScoreBytes)
            f.Add($"Api:MaxScoreInFlightBytes ({o.MaxScoreInFlightBytes}) must be at least Api:MaxScoreBytes ({o.MaxScoreBytes}), or no chunked request could ever be scored.");
        return OptionChecks.Result(f);
    }
}
