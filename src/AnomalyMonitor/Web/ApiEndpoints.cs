using System.Text.Json;
using AnomalyMonitor.Feedback;
using AnomalyMonitor.Pipeline;
using AnomalyMonitor.Registry;
using AnomalyMonitor.Retraining;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Quartz;

namespace AnomalyMonitor.Web;

/// <summary>
/// The operator API. Reading is open (like /metrics); changing anything needs the bearer token:
/// POST /api/score, POST /api/feedback, POST /api/retrain, POST /api/models/{version}/rollback.
/// </summary>
public static class ApiEndpoints
{
    public sealed record FeedbackBody(string? Id, string? Label);

    public static WebApplication MapApiEndpoints(this WebApplication app)
    {
        var api = app.MapGroup("/api");
        api.MapGet("/models", (ModelRegistry registry, ModelHolder holder, Retrainer retrainer) => Results.Json(new
        {
            current = holder.Version,
            fallback = holder.OnFallback,
            retraining = retrainer.Running,
            versions = registry.List().Select(Describe),
            retrains = retrainer.History,
        }, ModelsJson));

        var guarded = api.MapGroup("").AddEndpointFilter(async (context, next) =>
            context.HttpContext.RequestServices.GetRequiredService<ApiToken>().Check(context.HttpContext.Request) ?? await next(context).ConfigureAwait(false));

        HttpScoreSource.Map(guarded);

        guarded.MapPost("/feedback", async (HttpRequest request, FeedbackService feedback) =>
        {
            FeedbackBody? body;
            try
            {
                body = await request.ReadFromJsonAsync<FeedbackBody>(ModelsJson).ConfigureAwait(false);
            }
            catch (Exception e) when (e is JsonException or BadHttpRequestException or InvalidOperationException)
            {
                return Results.Json(feedback.Apply(null, null, "http") with { Message = $"the body must be JSON {{\"id\": \"...\", \"label\": \"normal\" | \"anomaly\"}} ({e.Message})" }, statusCode: 400);
            }
            var reply = feedback.Apply(body?.Id, body?.Label, "http");
            return reply.Result switch
            {
                FeedbackReply.Applied => Results.Json(reply),
                FeedbackReply.UnknownId => Results.Json(reply, statusCode: 404),
                _ => Results.Json(reply, statusCode: 400),
            };
        });

        guarded.MapPost("/retrain", async (bool? wait, Retrainer retrainer, ISchedulerFactory schedulers, CancellationToken cancellationToken) =>
        {
            if (retrainer.Running)
                return Results.Json(new { status = "running", message = "a retraining run is already in progress; see GET /api/models" }, statusCode: 409);
            var outcome = await RetrainScheduling.TriggerNowAsync(schedulers, cancellationToken).ConfigureAwait(false);
            if (wait != true) return Results.Json(new { status = "started", message = "retraining started; see GET /api/models" }, statusCode: 202);
            return Results.Json(await outcome.WaitAsync(cancellationToken).ConfigureAwait(false), ModelsJson);
        });

        guarded.MapPost("/models/{version:int}/rollback", (int version, Promotion promotion, ModelHolder holder) =>
        {
            try
            {
                promotion.Rollback(version);
                return Results.Json(new { status = "rolled back", version, message = $"v{version} is current; the scoring loop swaps it in before its next batch" });
            }
            catch (ArgumentException e)
            {
                return Results.Json(new { error = e.Message }, statusCode: 404);
            }
            catch (Core.Storage.ModelLoadException e)
            {
                return Results.Json(new { error = $"v{version} cannot be loaded: {e.Message}" }, statusCode: 409);
            }
        });
        return app;
    }

    public static readonly JsonSerializerOptions ModelsJson = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull,
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public static object Describe(ModelVersionInfo v) => new
    {
        version = v.Version,
        current = v.Current,
        valid = v.Valid,
        problem = v.Problem,
        decision = v.Decision ?? (v.Manifest?.ParentVersion is null ? "initial" : null),
        origin = v.Origin,
        createdAt = v.Manifest?.CreatedAt,
        parentVersion = v.Manifest?.ParentVersion,
        architecture = v.Manifest?.Architecture,
        samples = v.Manifest?.Data.Count,
        dataFingerprint = v.Manifest?.Data.Fingerprint,
        gate = v.Manifest?.Extra?.GetValueOrDefault("gate"),
        calibration = v.Manifest is { } m ? new { m.Calibration.Source, m.Calibration.Count, m.Calibration.Mean, m.Calibration.Std } : null,
    };
}
