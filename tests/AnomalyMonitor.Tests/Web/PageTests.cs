using System.Net;
using AnomalyMonitor.Tests.Support;
using Microsoft.Playwright;

namespace AnomalyMonitor.Tests.Web;

/// <summary>The live page in a real headless Chromium (Debian's /usr/bin/chromium), driven by Playwright.</summary>
public sealed class PageTests : IDisposable
{
    private const string Chromium = "/usr/bin/chromium";
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>Where the screenshot is kept: beside the test binaries (CI keeps it as an artifact).</summary>
    public static string ScreenshotPath => Path.Combine(AppContext.BaseDirectory, "artifacts", "web-page.png");

    [Fact]
    public async Task The_page_shows_an_anomaly_with_its_three_images_and_its_normal_button_reaches_the_service()
    {
        Assert.True(File.Exists(Chromium), $"{Chromium} is missing: apt-get install chromium (.ci/run installs it)");
        TestModel.InstallAsV1(Path.Combine(_dir.Path, "models"));
        await using var service = await TestService.StartAsync(_dir.Path, new Dictionary<string, string?>());
        await Wait.UntilAsync(() => service.Holder.IsJudging, "the model loaded");
        for (int i = 0; i < 12; i++) File.WriteAllBytes(Path.Combine(service.Inbox, $"normal-{i}.png"), TestModel.NormalPng(i));
        File.WriteAllBytes(Path.Combine(service.Inbox, "scratch-7.png"), TestModel.AnomalyPng(0));
        File.WriteAllBytes(Path.Combine(service.Inbox, "noise-3.png"), TestModel.AnomalyPng(1));
        await Wait.UntilAsync(() => Directory.GetFiles(Path.Combine(service.Inbox, "processed"), "*.png", SearchOption.AllDirectories).Length == 14, "14 items judged and recorded");
        Assert.True(File.Exists(Path.Combine(service.Inbox, "processed", "anomaly", "scratch-7.png")), "the stripes image is an anomaly");

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new() { ExecutablePath = Chromium, Headless = true });
        var page = await browser.NewPageAsync(new() { ViewportSize = new() { Width = 1280, Height = 1000 } });
        var consoleErrors = new List<string>();
        page.Console += (_, m) => { if (m.Type == "error") consoleErrors.Add(m.Text); };
        await page.GotoAsync(service.BaseUrl + "/");

        var card = page.Locator("article.card[data-id='scratch-7.png']");
        await card.WaitForAsync(new() { Timeout = 30_000 });
        foreach (var kind in new[] { "original", "reconstruction", "heatmap" })
        {
            var image = card.Locator($"img.{kind}");
            await page.WaitForFunctionAsync("img => img.complete && img.naturalWidth > 0", await image.ElementHandleAsync(), new() { Timeout = 15_000 });
            Assert.Equal(16, await image.EvaluateAsync<int>("img => img.naturalWidth"));
        }
        Assert.Equal("judging", await page.Locator("#state").TextContentAsync());
        Assert.Equal(service.Count("anomaly").ToString(System.Globalization.CultureInfo.InvariantCulture), await page.Locator("#c-anomalies").TextContentAsync());
        Assert.True(await page.Locator("#chart circle").CountAsync() >= 14, "every judged item is a point on the chart");
        Assert.Contains("v1", await page.Locator("#versions").TextContentAsync());

        // Read-only without the token.
        Assert.True(await card.Locator("button.normal").IsDisabledAsync());
        await page.FillAsync("#token", service.Token);
        Assert.True(await card.Locator("button.normal").IsEnabledAsync());
        await card.Locator("button.normal").ClickAsync();
        await Wait.UntilAsync(() => service.Store.LabelOf("scratch-7.png") == "normal", "the feedback reached the service");
        await page.Locator("article.card[data-id='scratch-7.png'] .result", new()).Filter(new() { HasText = "marked normal" }).WaitForAsync();
        Assert.NotNull(service.Store.Find("scratch-7.png", TestModel.Shape));

        Directory.CreateDirectory(Path.GetDirectoryName(ScreenshotPath)!);
        await page.ScreenshotAsync(new() { Path = ScreenshotPath, FullPage = true });
        Assert.True(new FileInfo(ScreenshotPath).Length > 10_000);
        Assert.Empty(consoleErrors);

        // A tablet-sized viewport lays the page out without horizontal scrolling.
        await page.SetViewportSizeAsync(768, 1024);
        Assert.True(await page.EvaluateAsync<bool>("() => document.documentElement.scrollWidth <= window.innerWidth"));
    }

    /// <summary>A model trained straight into Models:Path judges as version 0, which is a model, not "no model yet".</summary>
    [Fact]
    public async Task The_header_names_model_v0_when_version_0_judges()
    {
        TestModel.CopyTo(Path.Combine(_dir.Path, "models"));
        await using var service = await TestService.StartAsync(_dir.Path, new Dictionary<string, string?> { ["Fleet:Instance"] = "page-v0" });
        await Wait.UntilAsync(() => service.Holder.IsJudging, "the model loaded");
        Assert.Equal(0, service.Holder.Version);

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new() { ExecutablePath = Chromium, Headless = true });
        var page = await browser.NewPageAsync();
        await page.GotoAsync(service.BaseUrl + "/");
        await page.Locator("#state").Filter(new() { HasText = "judging" }).WaitForAsync(new() { Timeout = 30_000 });
        Assert.Equal("model v0", await page.Locator("#model").TextContentAsync());
        Assert.Equal("page-v0 · standalone", await page.Locator("#instance").TextContentAsync());
        Assert.True(await page.Locator("#degraded").IsHiddenAsync());
        Assert.True(await page.Locator("#held").IsHiddenAsync()); // the judge's guard has refused nothing
    }

    [Fact]
    public async Task Evidence_is_served_only_by_known_record_key_and_image_kind()
    {
        TestModel.InstallAsV1(Path.Combine(_dir.Path, "models"));
        await using var service = await TestService.StartAsync(_dir.Path, new Dictionary<string, string?>());
        await Wait.UntilAsync(() => service.Holder.IsJudging, "the model loaded");
        File.WriteAllBytes(Path.Combine(service.Inbox, "odd.png"), TestModel.AnomalyPng(0));
        await Wait.UntilAsync(() => File.Exists(Path.Combine(service.Inbox, "processed", "anomaly", "odd.png")), "the anomaly judged and recorded");
        await service.EvidenceWrittenAsync();
        using var http = service.Http("");
        var list = await System.Net.Http.Json.HttpClientJsonExtensions.GetFromJsonAsync<System.Text.Json.JsonElement>(http, "/api/anomalies");
        var key = list[0].GetProperty("key").GetString()!;
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync($"/api/evidence/{key}/heatmap")).StatusCode);
        File.WriteAllText(Path.Combine(_dir.Path, "secret.txt"), "not for the web");
        foreach (var path in new[] { $"/api/evidence/{key}/record", $"/api/evidence/{key}/..%2F..%2F..%2Fsecret.txt", "/api/evidence/..%2F..%2Fsecret.txt/original",
            "/api/evidence/..%2Fstate%2Fapi-token/original", $"/api/evidence/{key}%2F..%2F..%2F..%2Fsecret.txt/original", "/api/evidence/nope/original" })
            Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync(path)).StatusCode);
    }
}
