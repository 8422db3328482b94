using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using AnomalyMonitor.Tests.Support;

namespace AnomalyMonitor.Tests.Web;

/// <summary>POST /api/score: the synchronous source, through the same pipeline, judge and sinks as the others.</summary>
public sealed class ScoreApiTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static ByteArrayContent Body(byte[] bytes, string type)
    {
        var content = new ByteArrayContent(bytes);
        content.Headers.ContentType = new MediaTypeHeaderValue(type);
        return content;
    }

    private static async Task<(HttpStatusCode Status, JsonElement Body)> PostAsync(HttpClient http, byte[] bytes, string type)
    {
        using var response = await http.PostAsync("/api/score", Body(bytes, type));
        return (response.StatusCode, await response.Content.ReadFromJsonAsync<JsonElement>());
    }

    [Fact]
    public async Task Images_and_envelopes_are_answered_with_their_verdicts_and_bad_bodies_with_400_413_415()
    {
        TestModel.CopyTo(Path.Combine(_dir.Path, "models"));
        await using var service = await TestService.StartAsync(_dir.Path, new Dictionary<string, string?> { ["Api:MaxScoreBytes"] = "20000" });
        using var http = service.Http();

        using (var anonymous = service.Http(token: ""))
            Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.PostAsync("/api/score", Body(TestModel.NormalPng(0), "image/png"))).StatusCode);

        var (status, normal) = await PostAsync(http, TestModel.NormalPng(0), "image/png");
        Assert.Equal(HttpStatusCode.OK, status);
        var result = Assert.Single(normal.GetProperty("results").EnumerateArray().ToList());
        Assert.False(result.GetProperty("anomaly").GetBoolean());
        Assert.True(result.GetProperty("score").GetDouble() < result.GetProperty("threshold").GetDouble());
        Assert.Equal(service.Holder.Version, result.GetProperty("modelVersion").GetInt32());
        Assert.Equal("reconstruction", result.GetProperty("scoreKind").GetString());

        var anomaly = (await PostAsync(http, TestModel.AnomalyPng(0), "image/png")).Body.GetProperty("results")[0];
        Assert.True(anomaly.GetProperty("anomaly").GetBoolean());
        Assert.True(anomaly.GetProperty("zScore").GetDouble() > TestModel.AnomalyZ - 1);

        var envelope = "{\"id\":\"api-1\",\"image\":\"" + Convert.ToBase64String(TestModel.NormalPng(1)) + "\"}";
        var batch = $"[{envelope},{{\"id\":\"api-2\",\"image\":\"{Convert.ToBase64String(TestModel.AnomalyPng(1))}\"}},{{\"id\":\"api-bad\"}}]";
        var (batchStatus, answer) = await PostAsync(http, Encoding.UTF8.GetBytes(batch), "application/json");
        Assert.Equal(HttpStatusCode.OK, batchStatus);
        Assert.Equal(["api-1", "api-2"], answer.GetProperty("results").EnumerateArray().Select(r => r.GetProperty("id").GetString()).Order());
        Assert.Equal("api-bad", answer.GetProperty("rejected")[0].GetProperty("id").GetString());

        var (corrupt, why) = await PostAsync(http, [0x89, 0x50, 0x4e, 0x47, 9, 9, 9], "image/png");
        Assert.Equal(HttpStatusCode.BadRequest, corrupt);
        Assert.NotEmpty(why.GetProperty("rejected")[0].GetProperty("reason").GetString()!);
        Assert.Equal(HttpStatusCode.BadRequest, (await PostAsync(http, [], "image/png")).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await PostAsync(http, "{ nope"u8.ToArray(), "application/json")).Status);
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, (await PostAsync(http, "hello"u8.ToArray(), "text/plain")).Status);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, (await PostAsync(http, new byte[20001], "image/png")).Status);

        // The same judge and sinks as every source: counted under "http", and the anomalies alerted through the outbox.
        Assert.Equal(2, service.Count("normal", "http"));
        Assert.Equal(2, service.Count("anomaly", "http"));
        Assert.Equal(4, service.Pipeline.Judged);
        Assert.Contains(service.Metrics.Rejected.GetAllLabelValues(), l => l[0] == "http");
    }

    [Fact]
    public async Task While_learning_scoring_answers_503_with_retry_after()
    {
        await using var service = await TestService.StartAsync(_dir.Path, new Dictionary<string, string?>());
        Assert.False(service.Holder.IsJudging);
        using var http = service.Http();
        using var response = await http.PostAsync("/api/score", Body(TestModel.NormalPng(0), "image/png"));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.NotNull(response.Headers.RetryAfter);
        Assert.Equal(0, service.Pipeline.Judged);
    }

    [Fact]
    public async Task Bodies_past_the_in_flight_budget_are_answered_503_until_the_waiting_ones_settle()
    {
        TestModel.CopyTo(Path.Combine(_dir.Path, "models"));
        var png = TestModel.NormalPng(0);
        var budget = (png.Length * 3 / 2).ToString(System.Globalization.CultureInfo.InvariantCulture); // room for one body, not two
        await using var service = await TestService.StartAsync(_dir.Path, new Dictionary<string, string?> { ["Api:MaxScoreBytes"] = budget, ["Api:MaxScoreInFlightBytes"] = budget });
        await Wait.UntilAsync(() => service.Holder.IsJudging, "the model loaded");
        using var hold = new ScoringHold(service);
        using var http = service.Http();

        var waiting = http.PostAsync("/api/score", Body(png, "image/png"));
        hold.Entered();
        using (var busy = await http.PostAsync("/api/score", Body(TestModel.NormalPng(1), "image/png")))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, busy.StatusCode);
            Assert.NotNull(busy.Headers.RetryAfter);
            Assert.Contains("Api:MaxScoreInFlightBytes", await busy.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
        Assert.Equal(1, service.Metrics.ScoreBusy.Value);
        hold.Release();
        using (var first = await waiting) Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await PostAsync(http, TestModel.NormalPng(1), "image/png")).Status);
    }

    [Fact]
    public async Task A_client_that_hangs_up_mid_body_leaves_no_error_and_no_reservation()
    {
        TestModel.CopyTo(Path.Combine(_dir.Path, "models"));
        var logs = new LogCapture();
        const int Declared = 5000;
        await using var service = await TestService.StartAsync(_dir.Path,
            new Dictionary<string, string?> { ["Api:MaxScoreBytes"] = $"{Declared}", ["Api:MaxScoreInFlightBytes"] = $"{Declared}" }, logs.Attach);
        await Wait.UntilAsync(() => service.Holder.IsJudging, "the model loaded");
        var url = new Uri(service.BaseUrl);
        using (var client = new System.Net.Sockets.TcpClient())
        {
            await client.ConnectAsync(url.Host, url.Port);
            var stream = client.GetStream();
            var head = $"POST /api/score HTTP/1.1\r\nHost: {url.Authority}\r\nAuthorization: Bearer {service.Token}\r\nContent-Type: image/png\r\nContent-Length: {Declared}\r\n\r\n";
            await stream.WriteAsync(Encoding.ASCII.GetBytes(head));
            await stream.WriteAsync(TestModel.NormalPng(0).AsMemory(0, 40));
            await stream.FlushAsync();
            await Task.Delay(200); // the server is inside the body read when the client goes
        }
        using var http = service.Http();
        // The hung-up request held the whole budget: a later one is served only once it has been let go.
        await Wait.UntilAsync(async () => (await PostAsync(http, TestModel.NormalPng(1), "image/png")).Status == HttpStatusCode.OK, "the budget released");
        Assert.DoesNotContain(logs.Lines, l => l.Contains("unhandled", StringComparison.OrdinalIgnoreCase) || l.Contains("Exception", StringComparison.Ordinal));
    }
}
