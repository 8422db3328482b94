using AnomalyMonitor.Telemetry;
using Microsoft.Extensions.Time.Testing;

namespace AnomalyMonitor.Tests.Service;

/// <summary>A flood of skipped evidence is one log line a minute with its count, not one line per skip.</summary>
public class ReportThrottleTests
{
    [Fact]
    public void The_first_event_is_reported_then_at_most_once_an_interval_with_the_count_since()
    {
        var time = new FakeTimeProvider();
        var throttle = new ReportThrottle(TimeSpan.FromMinutes(1), time);
        Assert.True(throttle.Count(out var first));
        Assert.Equal(1, first);
        for (int i = 0; i < 500; i++)
        {
            time.Advance(TimeSpan.FromMilliseconds(100)); // 50 s of a flood
            Assert.False(throttle.Count(out _));
        }
        time.Advance(TimeSpan.FromSeconds(10));
        Assert.True(throttle.Count(out var since));
        Assert.Equal(501, since); // the 500 held back and this one
        Assert.False(throttle.Count(out _));
    }
}
