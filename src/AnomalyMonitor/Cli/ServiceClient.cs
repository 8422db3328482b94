using System.CommandLine;
using System.Net.Http.Headers;
using System.Text.Json;
using AnomalyMonitor.Web;

namespace AnomalyMonitor.Cli;

/// <summary>Talks to a running service's API: for the commands that must act on the live service (retrain, rollback).</summary>
internal sealed class ServiceClient(string url, string? token) : IDisposable
{
    private readonly HttpClient _http = new() { BaseAddress = BaseAddress(url), Timeout = Timeout.InfiniteTimeSpan };

    /// <summary>The --url as an http(s) address, or a clear error: "localhost:9464" would parse as a URI of scheme "localhost".</summary>
    private static Uri BaseAddress(string url)
    {
        if (Uri.TryCreate(url.TrimEnd('/') + "/", UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https") return uri;
        throw new InvalidOperationException($"--url '{url}' is not an http:// or https:// address (for example http://127.0.0.1:9464)");
    }

    public static Option<string> Url() => new("--url")
    {
        Description = "The service's web listener (Web:Urls). Environment: ANOMALYMONITOR_URL.",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("ANOMALYMONITOR_URL") is { Length: > 0 } u ? u : "http://127.0.0.1:9464",
    };

    public static Option<string?> TokenFile() => new("--token-file")
    {
        Description = "File holding the API token. Default: $ANOMALYMONITOR_API_TOKEN, else state/api-token here, else /var/lib/anomaly-monitor/state/api-token.",
    };

    /// <summary>The token from --token-file, the environment, or where the service generates it.</summary>
    public static string? ResolveToken(string? tokenFile)
    {
        if (tokenFile is not null)
        {
            try
            {
                return File.ReadAllText(tokenFile).Trim();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new InvalidOperationException($"cannot read the API token file: {e.Message}", e);
            }
        }
        if (Environment.GetEnvironmentVariable("ANOMALYMONITOR_API_TOKEN") is { Length: > 0 } env) return env.Trim();
        foreach (var candidate in new[] { Path.Combine("state", ApiToken.FileName), Path.Combine("/var/lib/anomaly-monitor/state", ApiToken.FileName) })
        {
            try
            {
                if (File.Exists(candidate)) return File.ReadAllText(candidate).Trim();
            }
            catch (UnauthorizedAccessException)
            {
                // not ours to read (run with sudo, or pass --token-file)
            }
        }
        return null;
    }

    public async Task<(int Status, JsonElement Body)> SendAsync(HttpMethod method, string path, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(method, path);
        if (token is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(request, cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException e)
        {
            throw new InvalidOperationException($"cannot reach the service at {_http.BaseAddress} ({e.Message}); is it running? (--url)", e);
        }
        using (response)
        {
            var text = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                var body = text.Length > 0 ? JsonDocument.Parse(text).RootElement.Clone() : default;
                return ((int)response.StatusCode, body);
            }
            catch (JsonException)
            {
                // Another server on that port, or a proxy's HTML error page.
                throw new InvalidOperationException($"{_http.BaseAddress} answered HTTP {(int)response.StatusCode} with something that is not this service's JSON: {(text.Length > 120 ? text[..120] + "…" : text)} (--url)");
            }
        }
    }

    /// <summary>One line for a non-2xx answer, from the body's error or message.</summary>
    public static string Problem(int status, JsonElement body)
    {
        string? detail = null;
        if (body.ValueKind == JsonValueKind.Object)
            detail = (body.TryGetProperty("error", out var e) ? e : body.TryGetProperty("message", out var m) ? m : default).ToString();
        var hint = status == 401 ? " (pass --token-file, or set ANOMALYMONITOR_API_TOKEN)" : "";
        return $"the service answered {status}: {detail}{hint}";
    }

    public void Dispose() => _http.Dispose();
}
