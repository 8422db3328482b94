using AnomalyMonitor.Alerts;
using AnomalyMonitor.Core.Imaging;
using AnomalyMonitor.Mqtt;
using AnomalyMonitor.Pipeline;
using AnomalyMonitor.Telemetry;
using AnomalyMonitor.Tests.Support;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace AnomalyMonitor.Tests.Service;

public sealed class SinkTests
{
    [Fact]
    public void Storm_control_applies_cooldown_per_source_and_a_cap_per_minute_and_reports_what_it_held_back()
    {
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2026-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        var storm = new StormControl(Options.Create(new AlertsOptions { Cooldown = TimeSpan.FromSeconds(10), MaxPerMinute = 3 }), time);

        Assert.Null(storm.Suppress("cam-1", driftActive: false));
        Assert.Equal(0, storm.TakeSuppressed());
        Assert.Equal("cooldown", storm.Suppress("cam-1", false));
        Assert.Null(storm.Suppress("cam-2", false));               // another source
        Assert.Equal(1, storm.TakeSuppressed());                    // rides on this alert
        time.Advance(TimeSpan.FromSeconds(11));
        Assert.Null(storm.Suppress("cam-1", false));               // cooldown over; the 3rd this minute
        Assert.Equal(0, storm.TakeSuppressed());
        Assert.Equal("rate_limit", storm.Suppress("cam-3", false));
        Assert.Equal("drift", storm.Suppress("cam-4", driftActive: true));
        time.Advance(TimeSpan.FromMinutes(1));
        Assert.Null(storm.Suppress("cam-5", false));
        Assert.Equal(2, storm.TakeSuppressed());
    }

    [Fact]
    public void A_sustained_shift_is_reported_once_and_ends_when_the_share_falls_back()
    {
        var time = new FakeTimeProvider();
        var drift = new DriftDetector(new DriftOptions { Fraction = 0.5, Duration = TimeSpan.FromMinutes(5), MinItems = 20 }, time);
        int starts = 0, ends = 0;
        void Feed(int seconds, double anomalyShare)
        {
            for (int s = 0; s < seconds; s++)
            {
                for (int i = 0; i < 10; i++)
                {
                    int change = drift.Observe(i < anomalyShare * 10);
                    if (change > 0) starts++;
                    if (change < 0) ends++;
                }
                time.Advance(TimeSpan.FromSeconds(1));
            }
        }
        Feed(600, 0.1);
        Assert.Equal(0, starts);
        Feed(200, 0.9);                 // shorter than the duration: not yet a shift
        Assert.Equal(0, starts);
        Feed(200, 0.9);
        Assert.Equal(1, starts);
        Assert.True(drift.Active);
        Feed(1200, 0.9);                // thousands of anomalies, still one report
        Assert.Equal(1, starts);
        Feed(400, 0.1);
        Assert.Equal(1, ends);
        Assert.False(drift.Active);
    }

    [Theory]
    [InlineData("broker.local:1884", "broker.local", 1884, false)]
    [InlineData("mqtts://broker.local:8884", "broker.local", 8884, true)]
    [InlineData("mqtts://broker.local", "broker.local", 8883, true)]
    [InlineData("broker.local", "broker.local", 1883, false)]
    public void Broker_addresses_parse(string text, string host, int port, bool tls) =>
        Assert.Equal((host, port, tls), MqttConnection.ParseBroker(text));
}
