using System.Net.Http.Json;
using System.Text.Json;
using AnomalyMonitor.Tests.Support;
using Microsoft.Playwright;

namespace AnomalyMonitor.Tests.Service;

/// <summary>
/// The judge's guard in the running service: a stream of images each normal by its score, but all crowded just
/// under the accept cut, as near-miss anomalies are. Every verdict is certain (fixed model, vetted images); only
/// the block's makeup trips the guard, and it trips by a wide margin (every score in the band, against a quarter).
/// </summary>
public sealed class JudgeGuardTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task A_block_crowded_under_the_cut_holds_the_window_and_the_store_and_says_so()
    {
        TestModel.InstallAsV1(Path.Combine(_dir.Path, "models"));
        await using var service = await TestService.StartAsync(_dir.Path, new Dictionary<string, string?> { ["Judge:Guard"] = "3" });
        await Wait.UntilAsync(() => service.Holder.IsJudging, "the model loaded");
        const int items = 240;
        for (int i = 0; i < items; i++) File.WriteAllBytes(Path.Combine(service.Inbox, $"near-{i:D3}.png"), TestModel.NearCutPng(i));
        var normal = Path.Combine(service.Inbox, "processed", "normal");
        await Wait.UntilAsync(() => Directory.Exists(normal) && Directory.GetFiles(normal).Length == items, "every near-cut image judged normal");

        var judge = service.Holder.Judge!;
        Assert.True(judge.Held);
        Assert.Equal(0, judge.WindowCount);     // the refused block never reached the window
        Assert.Equal(1.0, judge.LastBandShare); // all of it in the top band
        Assert.Equal(1, service.Metrics.WindowHeld.Value);
        Assert.True(service.Metrics.Blocks.WithLabels("refused").Value >= 1);
        // The block's items were accepted one at a time before it was tested; after the refusal nothing is.
        Assert.True(service.Store.Count <= 200, $"{service.Store.Count} samples stored");

        using var http = service.Http("");
        var status = await http.GetFromJsonAsync<JsonElement>("/api/status");
        Assert.True(status.GetProperty("windowHeld").GetBoolean());

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new() { ExecutablePath = "/usr/bin/chromium", Headless = true });
        var page = await browser.NewPageAsync();
        await page.GotoAsync(service.BaseUrl + "/");
        await page.Locator("#held").WaitForAsync(new() { State = WaitForSelectorState.Visible, Timeout = 30_000 });
    }
}
