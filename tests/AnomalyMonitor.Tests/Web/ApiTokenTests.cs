using AnomalyMonitor.State;
using AnomalyMonitor.Tests.Support;
using AnomalyMonitor.Web;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace AnomalyMonitor.Tests.Web;

/// <summary>The API token is never empty: an empty file stops the start, or is replaced when the service wrote it.</summary>
public sealed class ApiTokenTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private ApiToken Token(ApiOptions api) =>
        new(Options.Create(api), Options.Create(new ServiceOptions()), new PathResolver(_dir.Path), NullLogger<ApiToken>.Instance);

    private static bool Accepts(ApiToken token, string header)
    {
        var context = new DefaultHttpContext();
        context.Request.Headers.Authorization = header;
        return token.Check(context.Request) is null;
    }

    [Fact]
    public void An_empty_token_file_stops_the_start_with_the_reason()
    {
        File.WriteAllText(_dir.File("api-token"), "\n");
        var token = Token(new ApiOptions { TokenFile = _dir.File("api-token") });

        var e = Assert.Throws<OptionsValidationException>(token.Initialize);
        Assert.Contains("Api:TokenFile", e.Message, StringComparison.Ordinal);
        Assert.Contains("at least 16", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public void A_generated_token_left_empty_is_replaced_and_an_empty_header_never_matches()
    {
        var generated = Path.Combine(_dir.Path, "state", ApiToken.FileName);
        Directory.CreateDirectory(Path.GetDirectoryName(generated)!);
        File.WriteAllText(generated, ""); // a crash or a full disk while it was first written
        var token = Token(new ApiOptions());

        token.Initialize();

        var written = File.ReadAllText(generated).Trim();
        Assert.Equal(64, written.Length);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(generated));
        Assert.False(Accepts(token, "Bearer \v"));
        Assert.False(Accepts(token, "Bearer "));
        Assert.True(Accepts(token, "Bearer " + written));
        // The next start keeps it.
        Token(new ApiOptions()).Initialize();
        Assert.Equal(written, File.ReadAllText(generated).Trim());
    }
}
