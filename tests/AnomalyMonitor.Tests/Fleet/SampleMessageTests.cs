using System.Runtime.InteropServices;
using System.Text.Json;
using AnomalyMonitor.Core.Imaging;
using AnomalyMonitor.Fleet;
using AnomalyMonitor.Samples;

namespace AnomalyMonitor.Tests.Fleet;

/// <summary>Scorers send 8-bit samples at a byte a pixel; the trainer reads those and float32 ones, as older scorers send them, exactly.</summary>
public sealed class SampleMessageTests
{
    private static readonly ImageShape Shape = new(1, 6, 6);

    private static float[] EightBit(int seed) => [.. Enumerable.Range(0, Shape.PixelCount).Select(i => PixelBytes.Levels[(i * 29 + seed) % 256])];

    private static int PixelBytesOf(byte[] payload, int sample)
    {
        using var json = JsonDocument.Parse(payload);
        return Convert.FromBase64String(json.RootElement.GetProperty("samples")[sample].GetProperty("pixels").GetString()!).Length;
    }

    [Fact]
    public void Eight_bit_and_float_samples_travel_in_their_own_widths_and_decode_exactly()
    {
        var eight = EightBit(1);
        var smooth = Enumerable.Range(0, Shape.PixelCount).Select(i => i / 100f + 0.001f).ToArray();
        var payload = SampleMessage.Encode("scorer-1", Shape, [new("a", "cam", DateTimeOffset.UnixEpoch, 0.1, 3, eight), new("b", "cam", DateTimeOffset.UnixEpoch, 0.2, 3, smooth)]);
        Assert.Equal(Shape.PixelCount, PixelBytesOf(payload, 0));
        Assert.Equal(4 * Shape.PixelCount, PixelBytesOf(payload, 1));

        var (_, samples) = SampleMessage.Decode(payload, Shape, DateTimeOffset.UnixEpoch.AddYears(60));
        Assert.Equal(["scorer-1:a", "scorer-1:b"], samples.Select(s => s.ItemId));
        Assert.Equal(eight, samples[0].Pixels);
        Assert.Equal(smooth, samples[1].Pixels);
    }

    [Fact]
    public void A_receive_time_ahead_of_the_trainers_clock_is_taken_as_the_trainers_now()
    {
        var now = DateTimeOffset.Parse("2026-06-01T12:00:00Z", System.Globalization.CultureInfo.InvariantCulture);
        var past = now.AddHours(-3);
        var payload = SampleMessage.Encode("scorer-1", Shape, [new("early", "cam", past, 0.1, 3, EightBit(1)), new("ahead", "cam", now.AddDays(2), 0.1, 3, EightBit(2))]);

        var (_, samples) = SampleMessage.Decode(payload, Shape, now);

        Assert.Equal([past, now], samples.Select(s => s.ReceivedAt));
    }

    [Fact]
    public void A_message_from_a_scorer_that_sends_float32_only_still_decodes()
    {
        var eight = EightBit(2);
        var old = JsonSerializer.SerializeToUtf8Bytes(new SampleMessage("scorer-old", Shape.ToString(),
            [new SampleMessage.Sample("a", "cam", DateTimeOffset.UnixEpoch, 0.1, 3, Convert.ToBase64String(MemoryMarshal.AsBytes(eight.AsSpan())))]), ModelMessage.Json);
        Assert.Equal(eight, SampleMessage.Decode(old, Shape, DateTimeOffset.UnixEpoch.AddYears(60)).Samples[0].Pixels);
    }

    [Fact]
    public void Pixels_of_neither_width_are_refused_naming_the_sample()
    {
        var bad = JsonSerializer.SerializeToUtf8Bytes(new SampleMessage("scorer-1", Shape.ToString(),
            [new SampleMessage.Sample("short-one", "cam", DateTimeOffset.UnixEpoch, 0.1, 3, Convert.ToBase64String(new byte[Shape.PixelCount + 1]))]), ModelMessage.Json);
        var error = Assert.Throws<InvalidDataException>(() => SampleMessage.Decode(bad, Shape, DateTimeOffset.UnixEpoch.AddYears(60)));
        Assert.Contains("short-one", error.Message);
        Assert.Contains($"{Shape.PixelCount + 1} bytes", error.Message);
    }
}
