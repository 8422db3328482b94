using System.Text.Json.Nodes;
using AnomalyMonitor.Alerts;
using AnomalyMonitor.Fleet;
using AnomalyMonitor.State;
using AnomalyMonitor.Telemetry;
using AnomalyMonitor.Tests.Support;
using Microsoft.Extensions.Options;

namespace AnomalyMonitor.Tests.Fleet;

/// <summary>The model message's checks, each refusing before anything is written, and the outbox keeping only the newest retained model.</summary>
public sealed class ModelMessageTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private JsonNode Good()
    {
        var models = Path.Combine(_dir.Path, "models");
        TestModel.InstallAsV1(models);
        return JsonNode.Parse(ModelMessage.FromDirectory(Path.Combine(models, "v1"), 1, "trainer", TimeProvider.System.GetUtcNow()))!;
    }

    private static string Refusal(JsonNode message) =>
        Assert.Throws<FleetModelRefused>(() => ModelMessage.Verify(System.Text.Encoding.UTF8.GetBytes(message.ToJsonString()), TestModel.Shape)).Reason;

    [Fact]
    public void A_whole_message_verifies_and_each_damage_is_refused_for_its_reason()
    {
        var good = Good();
        var (message, manifest, weights) = ModelMessage.Verify(System.Text.Encoding.UTF8.GetBytes(good.ToJsonString()), TestModel.Shape);
        Assert.Equal(1, message.Version);
        Assert.Equal(manifest.Weights.Bytes, weights.Length);

        var traversal = good.DeepClone();
        traversal["manifest"]!["weights"]!["file"] = "../../escape.weights";
        Assert.Equal("corrupt", Refusal(traversal));

        var flipped = good.DeepClone();
        var bytes = Convert.FromBase64String(flipped["weights"]!.GetValue<string>());
        bytes[^1] ^= 0xFF;
        flipped["weights"] = Convert.ToBase64String(bytes);
        Assert.Equal("checksum", Refusal(flipped));

        var shorter = good.DeepClone();
        shorter["weights"] = Convert.ToBase64String(bytes[..^4]);
        Assert.Equal("truncated", Refusal(shorter));

        var otherVersion = good.DeepClone();
        otherVersion["version"] = 9;
        Assert.Equal("corrupt", Refusal(otherVersion));

        Assert.Equal("shape", Assert.Throws<FleetModelRefused>(() =>
            ModelMessage.Verify(System.Text.Encoding.UTF8.GetBytes(good.ToJsonString()), new AnomalyMonitor.Core.Imaging.ImageShape(1, 28, 28))).Reason);
    }

    [Fact]
    public void A_newer_retained_model_replaces_one_still_waiting_in_the_outbox()
    {
        var metrics = new MonitorMetrics();
        using var outbox = new AlertOutbox(Options.Create(new ServiceOptions { StateDirectory = "state" }), Options.Create(new AlertsOptions()), new PathResolver(_dir.Path), metrics);
        outbox.AddRange([new OutboxEntry("anomaly-monitor/alerts", [1], "anomaly")]);
        outbox.ReplaceRetained(new OutboxEntry("anomaly-monitor/fleet/model", [5], "model", Retain: true));
        outbox.ReplaceRetained(new OutboxEntry("anomaly-monitor/fleet/model", [6], "model", Retain: true));
        var pending = outbox.Peek(10);
        Assert.Equal(2, pending.Count);
        Assert.Equal([6], pending.Single(m => m.Kind == "model").Payload);
        Assert.Equal(2, outbox.Count);
        Assert.Equal(2, metrics.OutboxSize.Value);
    }
}
