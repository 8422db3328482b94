using System.Text.Json;
using AnomalyMonitor.Core.Imaging;

namespace AnomalyMonitor.Mqtt;

/// <summary>One image out of an MQTT payload.</summary>
public sealed record ParsedImage(string Id, string Source, byte[] Bytes, IReadOnlyDictionary<string, string>? Metadata);

/// <summary>
/// Reads the three payload kinds: raw image bytes; a JSON envelope
/// {"id","image": base64,"contentType","source","metadata"}; or a JSON batch, an array of envelopes
/// (or {"items": [...]}). A malformed payload is refused with the reason.
/// </summary>
public static class PayloadParser
{
    public static IReadOnlyList<ParsedImage> Parse(ReadOnlySpan<byte> payload, string topic, string fallbackId)
    {
        if (payload.IsEmpty)
            throw new InputRejectedException(fallbackId, RejectReason.Empty, "the message has no payload");
        int first = 0;
        while (first < payload.Length && payload[first] is (byte)' ' or (byte)'\n' or (byte)'\r' or (byte)'\t') first++;
        if (first == payload.Length || payload[first] is not ((byte)'{' or (byte)'['))
            return [new ParsedImage(fallbackId, topic, payload.ToArray(), null)];

        try
        {
            using var doc = JsonDocument.Parse(payload.ToArray());
            var root = doc.RootElement;
            if (root.ValueKind == JsonValueKind.Array) return Batch(root, topic, fallbackId);
            if (root.TryGetProperty("items", out var items) && items.ValueKind == JsonValueKind.Array) return Batch(items, topic, fallbackId);
            return [Envelope(root, topic, fallbackId)];
        }
        catch (JsonException e)
        {
            throw new InputRejectedException(fallbackId, RejectReason.Corrupt, $"the JSON payload is malformed ({e.Message})");
        }
    }

    private static List<ParsedImage> Batch(JsonElement array, string topic, string fallbackId)
    {
        var list = new List<ParsedImage>();
        int i = 0;
        foreach (var e in array.EnumerateArray()) list.Add(Envelope(e, topic, $"{fallbackId}#{i++}"));
        if (list.Count == 0) throw new InputRejectedException(fallbackId, RejectReason.Empty, "the batch holds no images");
        return list;
    }

    private static ParsedImage Envelope(JsonElement e, string topic, string fallbackId)
    {
        if (e.ValueKind != JsonValueKind.Object)
            throw new InputRejectedException(fallbackId, RejectReason.Corrupt, "an envelope must be a JSON object");
        string id = e.TryGetProperty("id", out var idProp) && idProp.ValueKind == JsonValueKind.String && idProp.GetString() is { Length: > 0 } s ? s : fallbackId;
        if (!e.TryGetProperty("image", out var image) || image.ValueKind != JsonValueKind.String)
            throw new InputRejectedException(id, RejectReason.Corrupt, "the envelope has no \"image\" (base64) field");
        byte[] bytes;
        try
        {
            bytes = Convert.FromBase64String(image.GetString()!);
        }
        catch (FormatException)
        {
            throw new InputRejectedException(id, RejectReason.Corrupt, "\"image\" is not valid base64");
        }
        string source = e.TryGetProperty("source", out var src) && src.ValueKind == JsonValueKind.String ? src.GetString()! : topic;
        Dictionary<string, string>? metadata = null;
        if (e.TryGetProperty("metadata", out var meta) && meta.ValueKind == JsonValueKind.Object)
            metadata = meta.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString()! : p.Value.GetRawText());
        return new ParsedImage(id, source, bytes, metadata);
    }
}
