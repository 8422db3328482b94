using AnomalyMonitor.Alerts;
using AnomalyMonitor.State;
using AnomalyMonitor.Ingest;
using AnomalyMonitor.Pipeline;
using AnomalyMonitor.Samples;
using AnomalyMonitor.Telemetry;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Prometheus;

namespace AnomalyMonitor.Web;

public static class Endpoints
{
    /// <summary>/metrics, /healthz (live), /readyz (model loaded and judging, sources connected) and /api/status.</summary>
    public static WebApplication MapMonitorEndpoints(this WebApplication app)
    {
        var metrics = app.Services.GetRequiredService<MonitorMetrics>();
        app.MapMetrics("/metrics", metrics.Registry);
        app.MapGet("/healthz", (PipelineService pipeline) => pipeline.Alive ? Results.Text("ok\n") : Results.Text("pipeline stalled\n", statusCode: 503));
        app.MapGet("/readyz", (IServiceProvider services) =>
        {
            var status = Status(services);
            return status.Ready ? Results.Json(status) : Results.Json(status, statusCode: 503);
        });
        app.MapGet("/api/status", (IServiceProvider services) => Results.Json(Status(services)));
        return app;
    }

    /// <summary>One source as /api/status lists it.</summary>
    public sealed record SourceStatus(string Name, bool Enabled, bool? Connected);

    public sealed record ServiceStatus(bool Ready, string State, int ModelVersion, double? Threshold, int WindowScores, bool Drift,
        bool? MqttIngestConnected, bool AlertsConnected, bool FolderWatching, long Judged, long OutboxPending, long NormalSamples,
        long Items, long Anomalies, long Rejected, long QueueDepth, bool Retraining, bool Degraded, IReadOnlyDictionary<string, string> StorageProblems,
        IReadOnlyList<SourceStatus> Sources, string Instance, string Role, string? ModelOrigin, bool WindowHeld);

    private static ServiceStatus Status(IServiceProvider s)
    {
        var holder = s.GetRequiredService<ModelHolder>();
        var pipeline = s.GetRequiredService<PipelineService>();
        var sources = s.GetServices<IIngestSource>().Select(x => new SourceStatus(x.Name, x.Enabled, x.Enabled ? x.Connected : null)).ToList();
        var publisher = s.GetRequiredService<AlertPublisher>();
        var health = s.GetRequiredService<StorageHealth>();
        bool? ingest = sources.FirstOrDefault(x => x.Name == "mqtt") is { Enabled: true } m ? m.Connected : null;
        bool ready = holder.IsJudging && sources.All(x => x.Connected != false) && publisher.Connected && !health.Degraded;
        var metrics = s.GetRequiredService<MonitorMetrics>();
        var fleet = s.GetRequiredService<Microsoft.Extensions.Options.IOptions<Fleet.FleetOptions>>().Value;
        long Outcome(string outcome) => (long)metrics.Items.GetAllLabelValues().Where(l => l[1] == outcome).Sum(l => metrics.Items.WithLabels(l).Value);
        return new ServiceStatus(ready, holder.IsJudging ? "judging" : "learning", holder.Version, holder.Judge?.Threshold,
            holder.Judge?.WindowCount ?? 0, pipeline.DriftActive, ingest, publisher.Connected, sources.Any(x => x.Name == "folder" && x.Enabled), pipeline.Judged,
            s.GetRequiredService<AlertOutbox>().Count, s.GetRequiredService<NormalSampleStore>().Count,
            Outcome("normal") + Outcome("anomaly") + Outcome("rejected"), Outcome("anomaly"), Outcome("rejected"),
            s.GetRequiredService<ItemQueue>().Count, s.GetRequiredService<Retraining.Retrainer>().Running, health.Degraded, health.Problems, sources,
            fleet.EffectiveInstance, fleet.RoleName, holder.Model is { } model ? Registry.ModelVersionInfo.OriginOf(model.Directory) : null,
            holder.Judge?.Held ?? false);
    }
}
