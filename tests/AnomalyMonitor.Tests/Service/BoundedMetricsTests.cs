using System.Text.Json;
using System.Text.RegularExpressions;
using AnomalyMonitor.Tests.Support;

namespace AnomalyMonitor.Tests.Service;

/// <summary>Senders choose the "source" label: however many they invent, the scrape stays small.</summary>
public sealed partial class BoundedMetricsTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    // Every series labelled by the items' source; source_errors_total names the kind of source (folder), not a sender.
    [GeneratedRegex("^(?!anomaly_monitor_source_errors_total)[^{\\s]*\\{[^}]*source=\"([^\"]*)\"", RegexOptions.Multiline)]
    private static partial Regex SourceLabel();

    [Fact]
    public async Task Three_thousand_distinct_sources_are_capped_at_MaxSources_plus_other()
    {
        TestModel.CopyTo(Path.Combine(_dir.Path, "models"));
        int port = Ports.Free();
        var logs = new LogCapture();
        await using var service = await TestService.StartAsync(_dir.Path, new Dictionary<string, string?>
        {
            ["Mqtt:Broker"] = "",
            ["Mqtt:Embedded:Port"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Ingest:Mqtt:Enabled"] = "true",
            ["Ingest:Folder:Enabled"] = "false",
        }, logs.Attach);
        await using var client = await MqttTestClient.ConnectAsync(port, "many-sources");
        await Wait.UntilAsync(() => service.App.Services.GetRequiredServiceOf<AnomalyMonitor.Mqtt.MqttSource>().Connected, "subscribed");
        using var http = service.Http("");
        int before = (await http.GetStringAsync("/metrics")).Length;

        // One JSON batch of 3,000 envelopes, each from a source of its own.
        var envelopes = Enumerable.Range(0, 3000).Select(i => new { id = $"m-{i}", image = Convert.ToBase64String(TestModel.NormalPng(i)), source = $"camera-{i:D4}" });
        await client.PublishAsync("anomaly-monitor/images/many", JsonSerializer.Serialize(envelopes));
        await Wait.UntilAsync(() => service.Pipeline.Judged == 3000, "3,000 items judged");

        var scrape = await http.GetStringAsync("/metrics");
        var sources = SourceLabel().Matches(scrape).Select(m => m.Groups[1].Value).ToHashSet();
        Assert.Equal(101, sources.Count);
        Assert.Contains("other", sources);
        Assert.Equal(3000, service.Count("normal"));
        Assert.Equal(2900, service.Count("normal", "other"));
        Assert.True(scrape.Length < before + 24 * 1024, $"/metrics grew from {before} to {scrape.Length} bytes");
        Assert.Single(logs.Lines, l => l.Contains("Metrics:MaxSources", StringComparison.Ordinal));
    }
}
