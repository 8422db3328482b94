using AnomalyMonitor.State;
using System.Security.Cryptography;
using System.Text;
using AnomalyMonitor.Telemetry;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace AnomalyMonitor.Web;

/// <summary>
/// The bearer token that guards every endpoint that changes something (feedback, retraining, rollback).
/// From Api:Token, or Api:TokenFile (relative: systemd's credentials directory), or else generated once
/// into the state directory as api-token (mode 0600), where the CLI finds it.
/// </summary>
public sealed class ApiToken(IOptions<ApiOptions> options, IOptions<ServiceOptions> service, PathResolver paths, ILogger<ApiToken> logger)
{
    public const string FileName = "api-token";
    private readonly Lazy<byte[]> _token = new(() => Encoding.UTF8.GetBytes(Resolve(options.Value, service.Value, paths, logger)));

    /// <summary>Null when the request carries the right token; otherwise the 401 to answer with.</summary>
    public IResult? Check(HttpRequest request)
    {
        var header = request.Headers.Authorization.ToString();
        const string scheme = "Bearer ";
        if (!header.StartsWith(scheme, StringComparison.OrdinalIgnoreCase))
            return Unauthorized("missing 'Authorization: Bearer <token>' header");
        var given = Encoding.UTF8.GetBytes(header[scheme.Length..].Trim());
        return CryptographicOperations.FixedTimeEquals(given, _token.Value) ? null : Unauthorized("wrong API token");
    }

    /// <summary>Resolves (or generates) the token at start, so that its location is logged before anyone needs it.</summary>
    public void Initialize() => _ = _token.Value;

    private static IResult Unauthorized(string why) =>
        Results.Json(new { error = why }, statusCode: StatusCodes.Status401Unauthorized);

    private static string Resolve(ApiOptions o, ServiceOptions service, PathResolver paths, ILogger logger)
    {
        if (!string.IsNullOrWhiteSpace(o.Token)) return o.Token.Trim();
        if (!string.IsNullOrWhiteSpace(o.TokenFile))
        {
            var file = o.TokenFile;
            if (!Path.IsPathRooted(file) && Environment.GetEnvironmentVariable("CREDENTIALS_DIRECTORY") is { Length: > 0 } creds) file = Path.Combine(creds, file);
            return File.ReadAllText(paths.Resolve(file)).Trim();
        }
        var generated = Path.Combine(paths.Resolve(service.StateDirectory), FileName);
        if (File.Exists(generated)) return File.ReadAllText(generated).Trim();
        Directory.CreateDirectory(Path.GetDirectoryName(generated)!);
        var token = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));
        File.WriteAllText(generated, token + "\n");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(generated, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        Log.TokenGenerated(logger, generated);
        return token;
    }
}
