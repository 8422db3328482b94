using AnomalyMonitor.Core.Storage;
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
    public const int MinLength = 16;
    private readonly Lazy<byte[]> _token = new(() => Encoding.UTF8.GetBytes(Resolve(options.Value, service.Value, paths, logger)));

    /// <summary>Null when the request carries the right token; otherwise the 401 to answer with.</summary>
    public IResult? Check(HttpRequest request)
    {
        var header = request.Headers.Authorization.ToString();
        const string scheme = "Bearer ";
        if (!header.StartsWith(scheme, StringComparison.OrdinalIgnoreCase))
            return Unauthorized("missing 'Authorization: Bearer <token>' header");
        var given = Encoding.UTF8.GetBytes(header[scheme.Length..].Trim());
        // Resolve never yields a short token; the length check keeps an empty one from ever matching an empty header.
        return _token.Value.Length >= MinLength && CryptographicOperations.FixedTimeEquals(given, _token.Value) ? null : Unauthorized("wrong API token");
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
            var given = File.ReadAllText(paths.Resolve(file)).Trim();
            // An empty or truncated file must stop the start, not leave the API guarded by a guessable token.
            if (given.Length < MinLength)
                throw new OptionsValidationException(ApiOptions.Section, typeof(ApiOptions),
                    [$"Api:TokenFile '{file}' holds {given.Length} character(s); a token needs at least {MinLength} (generate one with `openssl rand -hex 32`)."]);
            return given;
        }
        var generated = Path.Combine(paths.Resolve(service.StateDirectory), FileName);
        if (File.Exists(generated) && File.ReadAllText(generated).Trim() is { Length: >= MinLength } kept) return kept;
        // None yet, or one left empty by a crash or a full disk when it was written: a new one, written whole or not at all.
        Directory.CreateDirectory(Path.GetDirectoryName(generated)!);
        var token = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));
        AtomicFile.Write(generated, temp =>
        {
            var create = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
            if (!OperatingSystem.IsWindows()) create.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite; // 0600 from the first byte
            using var stream = new FileStream(temp, create);
            stream.Write(Encoding.UTF8.GetBytes(token + "\n"));
        });
        Log.TokenGenerated(logger, generated);
        return token;
    }
}
