using AnomalyMonitor.Core.Imaging;
using AnomalyMonitor.Ingest;
using AnomalyMonitor.Tests.Support;
using Microsoft.Extensions.Time.Testing;

namespace AnomalyMonitor.Tests.Ingest;

/// <summary>A flood of refusals is a burst of lines and then one line with the count, not a warning per image.</summary>
public sealed class RejectionLogTests
{
    private readonly LogCapture _logs = new();
    private readonly FakeTimeProvider _time = new();

    private RejectionLog NewLog() => new(_logs.CreateLogger("test"), _time, burst: 5, window: TimeSpan.FromSeconds(10));

    [Fact]
    public void Past_the_burst_refusals_are_counted_and_logged_as_one_line_when_the_window_ends_even_if_none_follows()
    {
        var log = NewLog();
        for (int i = 0; i < 105; i++) log.Rejected($"img-{i}", "mqtt", i % 3 == 0 ? RejectReason.Empty : RejectReason.Corrupt, "bad");

        Assert.Equal(5, _logs.Lines.Count);
        Assert.All(Enumerable.Range(0, 5), i => Assert.Contains(_logs.Lines, l => l.StartsWith($"Rejected img-{i} from mqtt", StringComparison.Ordinal)));

        _time.Advance(TimeSpan.FromSeconds(10)); // the timer fires: no further refusal is needed for the summary
        var summary = Assert.Single(_logs.Lines, l => l.Contains("100 more inputs", StringComparison.Ordinal));
        Assert.Contains("corrupt 67, empty 33", summary, StringComparison.Ordinal);
        Assert.Contains("the first: img-5", summary, StringComparison.Ordinal);

        log.Rejected("img-next", "mqtt", RejectReason.Empty, "bad"); // a new window logs again
        Assert.Contains(_logs.Lines, l => l.StartsWith("Rejected img-next", StringComparison.Ordinal));
        Assert.Equal(7, _logs.Lines.Count);
    }

    [Fact]
    public void Refusals_under_the_burst_are_each_logged_and_no_summary_follows()
    {
        var log = NewLog();
        for (int i = 0; i < 5; i++) log.Rejected($"img-{i}", "folder", RejectReason.Truncated, "cut short");
        _time.Advance(TimeSpan.FromMinutes(1));
        log.Flush();
        Assert.Equal(5, _logs.Lines.Count);
    }
}
