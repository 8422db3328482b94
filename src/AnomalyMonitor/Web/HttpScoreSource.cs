using AnomalyMonitor.Core.Imaging;
using AnomalyMonitor.Ingest;
using AnomalyMonitor.Pipeline;
using AnomalyMonitor.Telemetry;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace AnomalyMonitor.Web;

/// <summary>
/// POST /api/score: a synchronous source. The body (an image, or a JSON envelope or batch, as on MQTT) goes
/// through the same queue, batching, rolling judge and sinks as every other item, and the request is
/// answered when the item settles, with each image's verdict. It needs the API token: every image it
/// scores teaches the rolling window and may become training data, so an open endpoint would let anyone
/// move the threshold. Refused images are counted and logged like any other, and the answer says why;
/// they are not quarantined, since the caller still holds them.
/// </summary>
public sealed class HttpScoreSource(Intake intake, ModelHolder holder, TimeProvider time, IOptions<ApiOptions> options, MonitorMetrics metrics) : IIngestSource
{
    private static readonly string[] ImageTypes = ["image/png", "image/jpeg", "image/bmp", "image/gif", "image/tiff", "image/webp", "image/x-portable-anymap", "application/octet-stream"];
    private long _requests;

    public string Name => "http";

    public sealed record Result(string Id, double Score, double Threshold, double ZScore, bool Anomaly, int ModelVersion, string ScoreKind);
    public sealed record Refusal(string Id, string Reason, string Detail);
    public sealed record Answer(string Id, int Images, IReadOnlyList<Result> Results, IReadOnlyList<Refusal> Rejected);

    public void Settle(IngestItem item) => ((TaskCompletionSource<IngestItem>)item.State!).TrySetResult(item);

    /// <summary>Maps POST /api/score onto the guarded API group.</summary>
    public static void Map(RouteGroupBuilder guarded) =>
        guarded.MapPost("/score", (HttpContext context, HttpScoreSource source) => source.ScoreAsync(context));

    private async Task<IResult> ScoreAsync(HttpContext context)
    {
        var request = context.Request;
        long limit = options.Value.MaxScoreBytes;
        var type = request.ContentType?.Split(';')[0].Trim().ToLowerInvariant();
        if (type is null || !(type == "application/json" || ImageTypes.Contains(type)))
            return Error(StatusCodes.Status415UnsupportedMediaType, $"Content-Type '{request.ContentType}' is not an image or application/json; send image/png, image/jpeg, ... or a JSON envelope");
        if (request.ContentLength > limit)
            return Error(StatusCodes.Status413PayloadTooLarge, $"{request.ContentLength} bytes exceeds the limit of {limit} (Api:MaxScoreBytes)");
        if (!holder.IsJudging)
            return Error(StatusCodes.Status503ServiceUnavailable, "the service is learning: no model judges yet", retry: true);
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } max) max.MaxRequestBodySize = limit;
        // Bodies wait in memory until their items settle: many slow or large requests at once must not exhaust it.
        long reserved = request.ContentLength ?? limit;
        if (!TryReserve(reserved))
        {
            metrics.ScoreBusy.Inc();
            return Error(StatusCodes.Status503ServiceUnavailable,
                $"{Volatile.Read(ref _inFlightBytes)} bytes of other requests are being scored; Api:MaxScoreInFlightBytes is {options.Value.MaxScoreInFlightBytes}", retry: true);
        }
        try
        {
            return await ScoreBodyAsync(context, limit).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            return Results.Empty; // the client has gone; an item already submitted is still judged and settled
        }
        finally
        {
            Interlocked.Add(ref _inFlightBytes, -reserved);
        }
    }

    private long _inFlightBytes;

    /// <summary>One request is always let in, so that a body as large as the budget is never refused for ever.</summary>
    private bool TryReserve(long bytes)
    {
        long cap = options.Value.MaxScoreInFlightBytes;
        while (true)
        {
            long now = Volatile.Read(ref _inFlightBytes);
            if (now > 0 && now + bytes > cap) return false;
            if (Interlocked.CompareExchange(ref _inFlightBytes, now + bytes, now) == now) return true;
        }
    }

    private static async Task<byte[]> ReadBodyAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        if (request.ContentLength is { } length)
        {
            var exact = new byte[length];
            await request.Body.ReadExactlyAsync(exact, cancellationToken).ConfigureAwait(false);
            return exact;
        }
        using var buffer = new MemoryStream();
        await request.Body.CopyToAsync(buffer, cancellationToken).ConfigureAwait(false);
        return buffer.ToArray();
    }

    private async Task<IResult> ScoreBodyAsync(HttpContext context, long limit)
    {
        var request = context.Request;
        byte[] body;
        try
        {
            body = await ReadBodyAsync(request, context.RequestAborted).ConfigureAwait(false);
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return Error(StatusCodes.Status413PayloadTooLarge, $"the body exceeds the limit of {limit} bytes (Api:MaxScoreBytes)");
        }
        catch (Exception e) when (e is BadHttpRequestException or IOException)
        {
            // A client that hangs up mid-body is not the service's error, and there is no one to answer.
            return context.RequestAborted.IsCancellationRequested ? Results.Empty : Error(StatusCodes.Status400BadRequest, $"the body ended early: {e.Message}");
        }
        if (body.Length == 0) return Error(StatusCodes.Status400BadRequest, "the body is empty; send an image or a JSON envelope");

        var done = new TaskCompletionSource<IngestItem>(TaskCreationOptions.RunContinuationsAsynchronously);
        var item = new IngestItem
        {
            Source = this,
            Id = request.Headers["X-Item-Id"] is { Count: > 0 } id && !string.IsNullOrWhiteSpace(id) ? id.ToString() : $"http/{Interlocked.Increment(ref _requests)}-{time.GetUtcNow().ToUnixTimeMilliseconds()}",
            Label = "http",
            ReceivedAt = time.GetUtcNow(),
            Payload = body,
            KeepVerdicts = true,
            State = done,
        };
        if (!await intake.SubmitAsync(item, context.RequestAborted).ConfigureAwait(false))
            return Error(StatusCodes.Status503ServiceUnavailable, "the service is stopping", retry: true);
        var settled = await done.Task.WaitAsync(context.RequestAborted).ConfigureAwait(false);
        if (settled.HandedBack)
            return Error(StatusCodes.Status503ServiceUnavailable, $"not judged: {settled.HandBackReason}", retry: true);
        var answer = new Answer(settled.Id, settled.Images,
            [.. settled.Verdicts.Select(v => new Result(v.Id, v.Score, v.Threshold, v.ZScore, v.IsAnomaly, v.ModelVersion, v.ScoreKind))],
            [.. settled.Rejections.Select(r => new Refusal(r.Id, r.Reason.Name(), r.Detail))]);
        if (answer.Results.Count > 0) return Results.Json(answer, statusCode: StatusCodes.Status200OK);
        // Nothing judged: the status says why the (first) image was refused.
        var first = settled.Rejections.First();
        int status = first.Reason switch
        {
            RejectReason.TooLarge => StatusCodes.Status413PayloadTooLarge,
            RejectReason.Unsupported => StatusCodes.Status415UnsupportedMediaType,
            _ => StatusCodes.Status400BadRequest,
        };
        return Results.Json(answer, statusCode: status);
    }

    private static IResult Error(int status, string message, bool retry = false) => new ErrorResult(status, message, retry);

    private sealed class ErrorResult(int status, string message, bool retry) : IResult
    {
        public Task ExecuteAsync(HttpContext context)
        {
            if (retry) context.Response.Headers.RetryAfter = "1";
            return Results.Json(new { error = message }, statusCode: status).ExecuteAsync(context);
        }
    }
}
