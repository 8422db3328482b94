using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using AnomalyMonitor.Tests.Support;

namespace AnomalyMonitor.Tests.Service;

/// <summary>The Grafana dashboard and the Prometheus rules against the metrics the service really exports; a real Prometheus scraping it.</summary>
public sealed partial class ObservabilityTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static string Config(params string[] parts) => Path.Combine([Tool.RepositoryRoot(), "config", .. parts]);

    [GeneratedRegex(@"\banomaly_monitor_[a-z0-9_]+")]
    private static partial Regex MetricName();

    /// <summary>Metric names in a scrape: the # TYPE lines, with a histogram's _bucket, _sum and _count.</summary>
    private static HashSet<string> Exported(string scrape)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var line in scrape.Split('\n').Where(l => l.StartsWith("# TYPE ", StringComparison.Ordinal)))
        {
            var parts = line.Split(' ');
            names.Add(parts[2]);
            if (parts[3] == "histogram") foreach (var suffix in new[] { "_bucket", "_sum", "_count" }) names.Add(parts[2] + suffix);
        }
        return names;
    }

    [Fact]
    public async Task The_rules_pass_promtool_check_and_their_unit_tests()
    {
        var (check, checkOutput) = await Tool.RunAsync("promtool", "check rules anomaly-monitor.rules.yml", workingDirectory: Config("prometheus"));
        Assert.True(check == 0, checkOutput);
        Assert.Contains("SUCCESS: 12 rules found", checkOutput);
        var (test, testOutput) = await Tool.RunAsync("promtool", "test rules anomaly-monitor.rules.test.yml", workingDirectory: Config("prometheus"));
        Assert.True(test == 0, testOutput);
        var (config, configOutput) = await Tool.RunAsync("promtool", "check config prometheus.yml", workingDirectory: Config("prometheus"));
        Assert.True(config == 0, configOutput);
    }

    [Fact]
    public async Task Every_metric_the_dashboard_and_the_rules_query_is_one_the_running_service_exports()
    {
        TestModel.InstallAsV1(Path.Combine(_dir.Path, "models"));
        await using var service = await TestService.StartAsync(_dir.Path, new Dictionary<string, string?>());
        await Wait.UntilAsync(() => service.Holder.IsJudging, "the model loaded");
        File.WriteAllBytes(Path.Combine(service.Inbox, "n.png"), TestModel.NormalPng(0));
        File.WriteAllBytes(Path.Combine(service.Inbox, "a.png"), TestModel.AnomalyPng(0));
        File.WriteAllText(Path.Combine(service.Inbox, "bad.png"), "x");
        await Wait.UntilAsync(() => Directory.GetFiles(Path.Combine(service.Inbox, "processed"), "*.png", SearchOption.AllDirectories).Length == 2
            && service.Count("rejected") == 1, "items judged and recorded");
        using var http = service.Http();
        await http.PostAsJsonAsync("/api/feedback", new { id = "a.png", label = "normal" });
        var exported = Exported(await http.GetStringAsync("/metrics"));

        var dashboard = JsonDocument.Parse(File.ReadAllText(Config("grafana", "anomaly-monitor.json"))).RootElement;
        Assert.Equal("anomaly-monitor", dashboard.GetProperty("uid").GetString());
        var variables = dashboard.GetProperty("templating").GetProperty("list").EnumerateArray().ToDictionary(v => v.GetProperty("name").GetString()!, v => v.GetProperty("type").GetString());
        Assert.Equal("datasource", variables["datasource"]);
        Assert.Equal("query", variables["instance"]);
        var exprs = dashboard.GetProperty("panels").EnumerateArray().Where(p => p.TryGetProperty("targets", out _))
            .SelectMany(p => p.GetProperty("targets").EnumerateArray().Select(t => (Panel: p.GetProperty("title").GetString(), Expr: t.GetProperty("expr").GetString()!))).ToList();
        Assert.True(exprs.Count >= 20, $"only {exprs.Count} queries");
        foreach (var title in new[] { "Items per second by outcome", "Anomaly rate", "Reconstruction error distribution", "Threshold, mean, σ and the window guard", "Queue depth",
            "End-to-end latency", "Model version", "Model age", "Retrain results", "MQTT connections", "Alerts", "Rejected inputs by reason" })
            Assert.Contains(exprs, e => e.Panel == title);

        var rules = File.ReadAllText(Config("prometheus", "anomaly-monitor.rules.yml"));
        var queried = exprs.SelectMany(e => MetricName().Matches(e.Expr).Select(m => (Where: $"dashboard panel '{e.Panel}'", Name: m.Value)))
            .Concat(MetricName().Matches(rules).Select(m => (Where: "rules", Name: m.Value))).ToList();
        var unknown = queried.Where(q => !exported.Contains(q.Name)).Select(q => $"{q.Name} ({q.Where})").Distinct().ToList();
        Assert.True(unknown.Count == 0, "not exported by the service: " + string.Join(", ", unknown));
        Assert.Contains(queried, q => q.Name == "anomaly_monitor_reconstruction_error_bucket");
    }

    [Fact]
    public async Task A_real_Prometheus_scrapes_the_service_and_sees_the_items_sent()
    {
        TestModel.InstallAsV1(Path.Combine(_dir.Path, "models"));
        await using var service = await TestService.StartAsync(_dir.Path, new Dictionary<string, string?>());
        var target = new Uri(service.BaseUrl).Authority;
        int port = Ports.Free();
        var config = _dir.File("prometheus.yml");
        File.WriteAllText(config, $"""
            global:
              scrape_interval: 1s
              evaluation_interval: 1s
            rule_files:
              - {Config("prometheus", "anomaly-monitor.rules.yml")}
            scrape_configs:
              - job_name: anomaly-monitor
                static_configs:
                  - targets: ["{target}"]
            """);
        using var prometheus = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("prometheus",
            $"--config.file={config} --storage.tsdb.path={_dir.File("tsdb")} --web.listen-address=127.0.0.1:{port}")
        { RedirectStandardError = true, RedirectStandardOutput = true })!;
        prometheus.ErrorDataReceived += (_, _) => { };
        prometheus.BeginErrorReadLine();
        prometheus.BeginOutputReadLine();
        try
        {
            for (int i = 0; i < 5; i++) File.WriteAllBytes(Path.Combine(service.Inbox, $"n{i}.png"), TestModel.NormalPng(i));
            File.WriteAllBytes(Path.Combine(service.Inbox, "a.png"), TestModel.AnomalyPng(0));
            await Wait.UntilAsync(() => service.Pipeline.Judged == 6, "6 items judged");

            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
            double normal = 0, anomaly = 0;
            await Wait.UntilAsync(() =>
            {
                normal = Query(http, "sum(anomaly_monitor_items_total{job=\"anomaly-monitor\",outcome=\"normal\"})");
                anomaly = Query(http, "sum(anomaly_monitor_items_total{job=\"anomaly-monitor\",outcome=\"anomaly\"})");
                return normal == 5 && anomaly == 1;
            }, "Prometheus to report 5 normal and 1 anomalous item", seconds: 90);
            Assert.Equal(1, Query(http, "up{job=\"anomaly-monitor\"}"));
            var rules = await http.GetFromJsonAsync<JsonElement>("/api/v1/rules");
            var names = rules.GetProperty("data").GetProperty("groups")[0].GetProperty("rules").EnumerateArray().Select(r => r.GetProperty("name").GetString()).ToList();
            Assert.Contains("AnomalyMonitorAnomalyRateSpike", names);
            Assert.All(rules.GetProperty("data").GetProperty("groups")[0].GetProperty("rules").EnumerateArray(), r => Assert.Equal("ok", r.GetProperty("health").GetString()));
        }
        finally
        {
            prometheus.Kill(entireProcessTree: true);
            await prometheus.WaitForExitAsync();
        }
    }

    /// <summary>One instant query; NaN while Prometheus is starting or has no sample yet.</summary>
    private static double Query(HttpClient http, string promql)
    {
        try
        {
            var body = http.GetFromJsonAsync<JsonElement>("/api/v1/query?query=" + Uri.EscapeDataString(promql)).GetAwaiter().GetResult();
            var result = body.GetProperty("data").GetProperty("result");
            return result.GetArrayLength() == 0 ? double.NaN : double.Parse(result[0].GetProperty("value")[1].GetString()!, System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (HttpRequestException)
        {
            return double.NaN;
        }
    }
}
