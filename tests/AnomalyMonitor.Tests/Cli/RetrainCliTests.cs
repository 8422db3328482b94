using AnomalyMonitor.Tests.Support;

namespace AnomalyMonitor.Tests.Cli;

/// <summary>`retrain --now` and `models list|rollback`, as processes, against a service running in this process.</summary>
[Collection(TorchCollection.Name)]
public sealed class RetrainCliTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private string Models => Path.Combine(_dir.Path, "models");

    [Fact]
    public async Task Retrain_now_shows_the_decision_and_models_list_and_rollback_work_live_and_offline()
    {
        TestModel.InstallAsV1(Models, weak: true);
        await using (var service = await TestService.StartAsync(_dir.Path, new Dictionary<string, string?>
        {
            ["Retrain:Epochs"] = "6", ["Retrain:BatchSize"] = "32", ["Retrain:MinSamples"] = "50", ["Retrain:Seed"] = "3",
        }))
        {
            await Wait.UntilAsync(() => service.Holder.IsJudging, "the model loaded");
            service.Store.AddRange(TestModel.Samples(300, seed: 4), TestModel.Shape);
            var tokenFile = Path.Combine(_dir.Path, "state", "api-token");

            var refused = await CliProcess.RunAsync("retrain", "--now", "--url", service.BaseUrl, "--token-file", _dir.File("nope"));
            Assert.Equal(1, refused.ExitCode);
            Assert.StartsWith("error: cannot read the API token file", refused.Stderr, StringComparison.Ordinal);
            File.WriteAllText(_dir.File("wrong"), "wrong-token-of-some-length");
            var unauthorized = await CliProcess.RunAsync("retrain", "--now", "--url", service.BaseUrl, "--token-file", _dir.File("wrong"));
            Assert.Equal(1, unauthorized.ExitCode);
            Assert.Contains("401", unauthorized.Stderr);

            var run = await CliProcess.RunAsync("retrain", "--now", "--url", service.BaseUrl, "--token-file", tokenFile);
            Assert.True(run.ExitCode == 0, run.Stdout + run.Stderr);
            Assert.Contains("result:   promoted", run.Stdout);
            Assert.Contains("version:  2 (parent 1)", run.Stdout);
            await Wait.UntilAsync(() => service.Holder.Version == 2, "v2 swapped in");

            var list = await CliProcess.RunAsync("models", "list", "--url", service.BaseUrl);
            Assert.Equal(0, list.ExitCode);
            var lines = list.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.StartsWith("* v2", lines[1], StringComparison.Ordinal);
            Assert.Contains("promote", lines[1]);
            Assert.StartsWith("  v1", lines[2], StringComparison.Ordinal);

            var rollback = await CliProcess.RunAsync("models", "rollback", "1", "--url", service.BaseUrl, "--token-file", tokenFile);
            Assert.True(rollback.ExitCode == 0, rollback.Stderr);
            await Wait.UntilAsync(() => service.Holder.Version == 1, "v1 swapped back in");
            var missing = await CliProcess.RunAsync("models", "rollback", "7", "--url", service.BaseUrl, "--token-file", tokenFile);
            Assert.Equal(1, missing.ExitCode);
            Assert.Contains("no version v7", missing.Stderr);
        }

        // With the service stopped: the directory itself.
        var offline = await CliProcess.RunAsync("models", "rollback", "2", "--models", Models);
        Assert.True(offline.ExitCode == 0, offline.Stderr);
        Assert.Equal("v2", File.ReadAllText(Path.Combine(Models, "current")).Trim());
        var listed = await CliProcess.RunAsync("models", "list", "--models", Models, "--json");
        Assert.Equal(0, listed.ExitCode);
        Assert.Contains("\"current\": 2", listed.Stdout);
    }

    [Fact]
    public async Task A_url_without_a_scheme_or_a_server_that_is_not_this_service_is_a_clear_error_not_a_stack_trace()
    {
        var noScheme = await CliProcess.RunAsync("retrain", "--now", "--url", "localhost:9464");
        Assert.Equal(1, noScheme.ExitCode);
        Assert.Contains("is not an http:// or https:// address", noScheme.Stderr, StringComparison.Ordinal);

        // A proxy's HTML error page where the service should be.
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var serve = Task.Run(async () =>
        {
            using var peer = await listener.AcceptTcpClientAsync();
            var stream = peer.GetStream();
            var buffer = new byte[4096];
            _ = await stream.ReadAsync(buffer);
            var html = "<html><body>502 Bad Gateway</body></html>";
            await stream.WriteAsync(System.Text.Encoding.ASCII.GetBytes($"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nContent-Length: {html.Length}\r\nConnection: close\r\n\r\n{html}"));
        });
        var html = await CliProcess.RunAsync("models", "list", "--url", $"http://127.0.0.1:{((System.Net.IPEndPoint)listener.LocalEndpoint).Port}");
        await serve;
        Assert.Equal(1, html.ExitCode);
        Assert.Contains("502 with something that is not this service's JSON", html.Stderr, StringComparison.Ordinal);

        // A mistyped registry is not an empty one.
        var typo = await CliProcess.RunAsync("models", "list", "--models", _dir.File("modles"));
        Assert.Equal(1, typo.ExitCode);
        Assert.Contains("there is no directory", typo.Stderr, StringComparison.Ordinal);
        foreach (var r in new[] { noScheme, html, typo }) Assert.DoesNotContain("   at ", r.Stderr, StringComparison.Ordinal);
    }
}
