using System.Reflection;
using AnomalyMonitor.Evidence;
using AnomalyMonitor.Pipeline;
using AnomalyMonitor.Samples;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace AnomalyMonitor.Web;

/// <summary>
/// The live page at / (three embedded files, no build step) and the read-only data it polls: recent
/// scores, the latest anomalies and their evidence images.
/// </summary>
public static class PageEndpoints
{
    private static readonly Dictionary<string, (string Resource, string ContentType)> Assets = new(StringComparer.Ordinal)
    {
        ["/"] = ("index.html", "text/html; charset=utf-8"),
        ["/app.js"] = ("app.js", "text/javascript; charset=utf-8"),
        ["/app.css"] = ("app.css", "text/css; charset=utf-8"),
    };

    public static WebApplication MapPage(this WebApplication app)
    {
        foreach (var (path, (resource, contentType)) in Assets)
        {
            var bytes = Load(resource);
            app.MapGet(path, (HttpContext context) =>
            {
                context.Response.Headers.CacheControl = "no-cache";
                return Results.Bytes(bytes, contentType);
            });
        }

        app.MapGet("/api/scores", (ScoreHistory history) => Results.Json(history.Snapshot().Select(p => new
        {
            at = p.At, score = p.Score, threshold = p.Threshold, anomaly = p.Anomaly, modelVersion = p.ModelVersion,
        })));

        app.MapGet("/api/anomalies", (int? limit, EvidenceStore evidence, NormalSampleStore store) =>
            Results.Json(evidence.Latest(Math.Clamp(limit ?? 12, 1, 100)).Select(r => new
            {
                key = r.Key,
                id = r.Alert.Id,
                source = r.Alert.Source,
                receivedAt = r.Alert.ReceivedAt,
                judgedAt = r.Alert.JudgedAt,
                score = r.Alert.Score,
                threshold = r.Alert.Threshold,
                zScore = r.Alert.ZScore,
                modelVersion = r.Alert.ModelVersion,
                feedback = store.LabelOf(r.Alert.Id),
                images = EvidenceStore.Images.Keys.ToDictionary(k => k, k => $"/api/evidence/{Uri.EscapeDataString(r.Key)}/{k}"),
            })));

        app.MapGet("/api/evidence/{key}/{kind}", (string key, string kind, EvidenceStore evidence, HttpContext context) =>
        {
            var path = evidence.ImagePath(key, kind);
            if (path is null || !File.Exists(path)) return Results.NotFound();
            context.Response.Headers.CacheControl = "public, max-age=86400, immutable";
            return Results.File(path, "image/png");
        });
        return app;
    }

    private static byte[] Load(string name)
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream($"AnomalyMonitor.Web.Page.{name}")
            ?? throw new InvalidOperationException($"The page resource {name} is not embedded in the build.");
        using var memory = new MemoryStream();
        stream.CopyTo(memory);
        return memory.ToArray();
    }
}
