using System.Text.Json;
using AnomalyMonitor.Core.Imaging;
using AnomalyMonitor.Samples;

namespace AnomalyMonitor.Fleet;

/// <summary>
/// One batch of a scorer's accepted normals on Fleet:SamplesTopic, for the trainer's sample store: the
/// sender, the shape, and per sample its item id, source, times, score, model version and pixels exactly as
/// the scorer judged them, base64: one byte a pixel when the image came from an 8-bit source, as the sample
/// store keeps it (a quarter of the traffic), float32 little-endian otherwise. The decoded length says which.
/// A trainer reads both; one older than this format reads only float32, so upgrade the trainer first.
/// </summary>
public sealed record SampleMessage(string Instance, string Shape, IReadOnlyList<SampleMessage.Sample> Samples, IReadOnlyList<SampleMessage.Feedback>? Labels = null)
{
    public sealed record Sample(string Id, string Source, DateTimeOffset ReceivedAt, double Score, int ModelVersion, string Pixels);

    /// <summary>An operator's label given to a scorer; the pixels when the scorer has them (a false alarm's evidence).</summary>
    public sealed record Feedback(string Id, string Label, DateTimeOffset At, double Score, int ModelVersion, string? Pixels);

    /// <summary>A label forwarded from a scorer to the trainer, which holds the item's sample (or gets its pixels here).</summary>
    public static byte[] EncodeLabel(string instance, ImageShape shape, string id, string label, DateTimeOffset at, double score, int modelVersion, float[]? pixels) =>
        JsonSerializer.SerializeToUtf8Bytes(new SampleMessage(instance, shape.ToString(), [],
            [new Feedback(id, label, at, score, modelVersion, pixels is null ? null : Convert.ToBase64String(PixelBytes.Pack(pixels)))]), ModelMessage.Json);

    /// <summary>The pixels of a base64 field (8-bit or float32), checked against the shape and [0, 1].</summary>
    internal static float[] Pixels(string? base64, string id, ImageShape expected)
    {
        var bytes = Convert.FromBase64String(base64 ?? "");
        if (bytes.Length != expected.PixelCount && bytes.Length != expected.PixelCount * sizeof(float))
            throw new InvalidDataException($"sample '{id}' has {bytes.Length} bytes of pixels, neither {expected.PixelCount} (8-bit) nor {expected.PixelCount * sizeof(float)} (float32)");
        var pixels = PixelBytes.Unpack(bytes, expected.PixelCount);
        if (pixels.Any(p => !float.IsFinite(p) || p < 0 || p > 1)) throw new InvalidDataException($"sample '{id}' has pixels outside [0, 1]");
        return pixels;
    }

    public static byte[] Encode(string instance, ImageShape shape, IReadOnlyList<NewSample> samples) =>
        JsonSerializer.SerializeToUtf8Bytes(new SampleMessage(instance, shape.ToString(), [.. samples.Select(s =>
            new Sample(s.ItemId, s.Source, s.ReceivedAt, s.Score, s.ModelVersion, Convert.ToBase64String(PixelBytes.Pack(s.Pixels))))]), ModelMessage.Json);

    /// <summary>
    /// The samples, with their provenance folded in (source "&lt;instance&gt;/&lt;source&gt;", id
    /// "&lt;instance&gt;:&lt;id&gt;"), or an <see cref="InvalidDataException"/> naming what is wrong. A receive time
    /// later than <paramref name="now"/> (the trainer's clock) is taken as now: a scorer whose clock runs ahead
    /// would otherwise keep its samples in Retrain:QuarantineAge for longer.
    /// </summary>
    public static (SampleMessage Message, List<NewSample> Samples) Decode(ReadOnlySpan<byte> payload, ImageShape expected, DateTimeOffset now)
    {
        SampleMessage? message;
        try
        {
            message = JsonSerializer.Deserialize<SampleMessage>(payload, ModelMessage.Json);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"not a samples message ({e.Message})");
        }
        if (message?.Samples is null || string.IsNullOrWhiteSpace(message.Instance)) throw new InvalidDataException("the message lacks its instance or samples");
        if (message.Shape != expected.ToString()) throw new InvalidDataException($"its samples are {message.Shape}; the trainer's model takes {expected}");
        var list = new List<NewSample>(message.Samples.Count);
        foreach (var s in message.Samples)
            if (s is not null) list.Add(new NewSample($"{message.Instance}:{s.Id}", $"{message.Instance}/{s.Source}", s.ReceivedAt > now ? now : s.ReceivedAt, s.Score, s.ModelVersion, Pixels(s.Pixels, s.Id, expected)));
        return (message, list);
    }
}
