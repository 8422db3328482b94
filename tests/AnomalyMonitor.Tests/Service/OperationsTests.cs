using AnomalyMonitor.Tests.Support;

namespace AnomalyMonitor.Tests.Service;

/// <summary>What an operator and an admin touch: /metrics (checked by promtool), health endpoints, bad configuration, the systemd unit.</summary>
public sealed class OperationsTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static Task<(int Code, string Output)> RunAsync(string file, string args, string? stdin = null) => Tool.RunAsync(file, args, stdin);

    /// <summary>The soak's flat RSS depends on it (docs/benchmarks.md §4b): the executable as shipped must carry it.</summary>
    [Fact]
    public void The_executable_runs_with_a_memory_conserving_gc()
    {
        var config = Path.ChangeExtension(CliProcess.Dll, ".runtimeconfig.json");
        var properties = System.Text.Json.JsonDocument.Parse(File.ReadAllText(config)).RootElement.GetProperty("runtimeOptions").GetProperty("configProperties");
        Assert.Equal(7, properties.GetProperty("System.GC.ConserveMemory").GetInt32());
    }

    [Fact]
    public async Task Metrics_are_scraped_parsed_and_pass_promtool()
    {
        TestModel.CopyTo(Path.Combine(_dir.Path, "models"));
        await using var service = await TestService.StartAsync(_dir.Path, new Dictionary<string, string?>());
        for (int i = 0; i < 3; i++) File.WriteAllBytes(Path.Combine(service.Inbox, $"n{i}.png"), TestModel.NormalPng(i));
        File.WriteAllBytes(Path.Combine(service.Inbox, "a.png"), TestModel.AnomalyPng(0));
        File.WriteAllText(Path.Combine(service.Inbox, "bad.png"), "x");
        await Wait.UntilAsync(() => service.Pipeline.Judged == 4 && service.Count("rejected") == 1, "4 judged and 1 rejected");

        using var http = new HttpClient();
        var text = await http.GetStringAsync(service.BaseUrl + "/metrics");
        var samples = text.Split('\n').Where(l => l.Length > 0 && !l.StartsWith('#'))
            .Select(l => l.Split(' ')).ToDictionary(p => p[0], p => double.Parse(p[1], System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(3, samples["anomaly_monitor_items_total{source=\"folder\",outcome=\"normal\"}"]);
        Assert.Equal(1, samples["anomaly_monitor_items_total{source=\"folder\",outcome=\"anomaly\"}"]);
        Assert.Equal(1, samples["anomaly_monitor_rejected_total{source=\"folder\",reason=\"unsupported\"}"]);
        Assert.Equal(4, samples["anomaly_monitor_reconstruction_error_count"]);
        Assert.True(samples["anomaly_monitor_threshold"] > 0);
        Assert.Equal(1, samples["anomaly_monitor_state{state=\"judging\"}"]);
        foreach (var name in new[] { "anomaly_monitor_scoring_batch_duration_seconds_count", "anomaly_monitor_end_to_end_latency_seconds_count", "anomaly_monitor_queue_depth",
            "anomaly_monitor_model_version", "anomaly_monitor_model_created_timestamp_seconds", "anomaly_monitor_normal_store_samples", "anomaly_monitor_alert_outbox_size", "anomaly_monitor_judge_window_scores" })
            Assert.True(samples.Keys.Any(k => k.StartsWith(name, StringComparison.Ordinal)), $"{name} missing");

        var (code, output) = await RunAsync("promtool", "check metrics", text);
        Assert.True(code == 0, "promtool check metrics: " + output);

        Assert.Equal("ok\n", await http.GetStringAsync(service.BaseUrl + "/healthz"));
        // Ready once the alert connection to the embedded broker is up, which may trail the first verdicts on a loaded machine.
        string last = "";
        await Wait.UntilAsync(() =>
        {
            using var ready = http.GetAsync(service.BaseUrl + "/readyz").GetAwaiter().GetResult();
            last = ready.Content.ReadAsStringAsync().GetAwaiter().GetResult();
            return ready.IsSuccessStatusCode;
        }, "/readyz to answer 200", seconds: 30);
        Assert.Contains("\"ready\":true", last);
    }

    /// <summary>The example configurations pass every validator (they are what admins copy).</summary>
    [Theory]
    [InlineData("appsettings.production.json")]
    [InlineData("appsettings.local.json")]
    [InlineData("appsettings.fleet-trainer.json")]
    [InlineData("appsettings.fleet-scorer.json")]
    public async Task The_example_configurations_are_valid(string file)
    {
        var config = Path.Combine(Tool.RepositoryRoot(), "config", file);
        File.WriteAllText(_dir.File("api-token"), "a-token-the-admin-placed-there"); // the production examples read it from a file
        var app = AnomalyMonitor.Hosting.ServiceHost.Build(configFile: config, paths: new AnomalyMonitor.State.PathResolver(_dir.Path));
        await using (app)
        {
            // Each area's options, through its validator, as the host's start would check them.
            foreach (var type in new[] { typeof(AnomalyMonitor.Fleet.FleetOptions), typeof(AnomalyMonitor.Mqtt.MqttOptions), typeof(AnomalyMonitor.Ingest.IngestOptions),
                typeof(AnomalyMonitor.Alerts.AlertsOptions), typeof(AnomalyMonitor.Retraining.RetrainOptions), typeof(AnomalyMonitor.Web.WebOptions), typeof(AnomalyMonitor.Registry.ModelsOptions) })
            {
                var options = app.Services.GetService(typeof(Microsoft.Extensions.Options.IOptions<>).MakeGenericType(type))!;
                Assert.NotNull(options.GetType().GetProperty("Value")!.GetValue(options));
            }
        }
    }

    [Fact]
    public async Task Invalid_configuration_exits_non_zero_listing_every_problem()
    {
        var config = _dir.File("bad.json");
        File.WriteAllText(config, """
            { "Judge": { "K": -1, "Window": 1 }, "Pipeline": { "MaxBatchSize": 0 }, "Mqtt": { "Broker": "host:notaport" },
              "Alerts": { "Topic": "alerts/#" }, "Models": { "Device": "tpu", "Lanes": 5 }, "Web": { "Urls": "ftp://x" }, "Fleet": { "Role": "boss" },
              "NormalStore": { "BurstSeconds": 0 }, "Ingest": { "Retention": { "Interval": "00:00:00", "Quarantine": { "MaxBytes": -1 } } } }
            """);
        var result = await CliProcess.RunAsync("run", "--config", config);
        Assert.Equal(1, result.ExitCode);
        foreach (var expected in new[] { "Judge:K", "Judge:Window", "Pipeline:MaxBatchSize", "Mqtt:Broker", "Alerts:Topic", "Models:Device", "Models:Lanes", "Web:Urls", "Fleet:Role", "NormalStore:BurstSeconds", "Ingest:Retention:Interval", "Ingest:Retention:Quarantine:MaxBytes" })
            Assert.Contains(expected, result.Stderr);
        Assert.DoesNotContain("   at ", result.Stderr);
    }

    [Fact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public async Task The_systemd_unit_verifies_clean()
    {
        var repo = Tool.RepositoryRoot();
        var unit = File.ReadAllText(Path.Combine(repo, "systemd", "anomaly-monitor.service"));
        // systemd-analyze checks that ExecStart exists; point it at a stand-in since nothing is installed here.
        var exe = _dir.File("anomaly-monitor");
        File.WriteAllText(exe, "#!/bin/sh\n");
        File.SetUnixFileMode(exe, UnixFileMode.UserRead | UnixFileMode.UserExecute | UnixFileMode.UserWrite);
        var copy = _dir.File("anomaly-monitor.service");
        File.WriteAllText(copy, unit.Replace("/opt/anomaly-monitor/anomaly-monitor", exe, StringComparison.Ordinal));
        var (code, output) = await RunAsync("systemd-analyze", $"verify {copy}");
        Assert.True(code == 0 && output.Trim().Length == 0, "systemd-analyze verify: " + output);
        foreach (var directive in new[] { "Type=notify", "WatchdogSec=", "Restart=on-failure", "User=anomaly-monitor", "StateDirectory=", "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes", "LoadCredential=" })
            Assert.Contains(directive, unit);
    }
}
