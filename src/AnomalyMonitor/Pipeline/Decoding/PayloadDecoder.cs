using System.Buffers;
using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text.Json;
using AnomalyMonitor.Core.Data;
using AnomalyMonitor.Core.Imaging;
using AnomalyMonitor.Ingest;

namespace AnomalyMonitor.Pipeline.Decoding;

/// <summary>One image found in an item: its id, source label and metadata, and where its bytes or pixels are.</summary>
public sealed record FoundImage(string Id, string Source, IReadOnlyDictionary<string, string>? Metadata)
{
    /// <summary>Where the image's bytes lie in the item's payload (base64 text when <see cref="Base64"/>).</summary>
    public Range Bytes { get; init; } = Range.All;
    public bool Base64 { get; init; }
    /// <summary>Bytes of its own, when they could not be read in place (a base64 string with JSON escapes).</summary>
    public byte[]? Own { get; init; }
    /// <summary>A batch file's images, already read, and this one's index.</summary>
    public ImageSet? Pixels { get; init; }
    public int Index { get; init; }
    /// <summary>Refused as soon as it was found (an envelope without an image, a reader's refusal).</summary>
    public InputRejectedException? Rejection { get; init; }
}

/// <summary>
/// The first stage: works out what an item's payload holds (raw image bytes; a JSON envelope
/// {"id","image": base64,"contentType","source","metadata"}; a JSON batch, an array of envelopes or
/// {"items": [...]}; or a batch file, IDX/npy/npz), and decodes each image straight into a batch slot.
/// JSON is read with Utf8JsonReader over the payload and base64 decoded from its UTF-8 bytes into a pooled
/// buffer, so an envelope costs no strings and no copies of the payload. Thread-safe (no state).
/// </summary>
public static class PayloadDecoder
{
    /// <summary>Finds the images of an item; throws <see cref="InputRejectedException"/> when the whole item is unusable.</summary>
    public static IReadOnlyList<FoundImage> Find(IngestItem item, ImageShape shape, DecodeLimits limits)
    {
        if (item.BatchFile is { } file) return FindInFile(item, file, shape, limits);
        var payload = item.Payload.Span;
        if (payload.IsEmpty) throw new InputRejectedException(item.Id, RejectReason.Empty, "the payload is empty");
        if (payload.Length > limits.MaxBytes)
            throw new InputRejectedException(item.Id, RejectReason.TooLarge, $"{payload.Length} bytes exceeds the limit of {limits.MaxBytes}");
        int first = 0;
        while (first < payload.Length && payload[first] is (byte)' ' or (byte)'\n' or (byte)'\r' or (byte)'\t') first++;
        if (first == payload.Length || payload[first] is not ((byte)'{' or (byte)'['))
            return [new FoundImage(item.Id, item.Label, item.Metadata)];
        try
        {
            return FindInJson(item);
        }
        catch (JsonException e)
        {
            throw new InputRejectedException(item.Id, RejectReason.Corrupt, $"the JSON payload is malformed ({e.Message})");
        }
        catch (InvalidOperationException e)
        {
            // The reader checks a string's UTF-8 only when it is read as text (an id, a source, metadata).
            throw new InputRejectedException(item.Id, RejectReason.Corrupt, $"the JSON payload holds text that is not valid UTF-8 ({e.Message})");
        }
    }

    /// <summary>Decodes one found image into <paramref name="destination"/> (the model layout); throws <see cref="InputRejectedException"/> for this image.</summary>
    public static void DecodeInto(IngestItem item, FoundImage image, ImageShape shape, DecodeLimits limits, Span<float> destination)
    {
        if (image.Rejection is { } refused) throw refused;
        if (image.Pixels is { } set)
        {
            set.Image(image.Index).CopyTo(destination);
            return;
        }
        var bytes = image.Own is { } own ? own : item.Payload.Span[image.Bytes];
        if (!image.Base64)
        {
            ImageDecoder.Decode(bytes, image.Id, shape, limits, destination);
            return;
        }
        var buffer = ArrayPool<byte>.Shared.Rent(Base64.GetMaxDecodedFromUtf8Length(bytes.Length));
        try
        {
            if (Base64.DecodeFromUtf8(bytes, buffer, out _, out int written) != OperationStatus.Done)
                throw new InputRejectedException(image.Id, RejectReason.Corrupt, "\"image\" is not valid base64");
            ImageDecoder.Decode(buffer.AsSpan(0, written), image.Id, shape, limits, destination);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>The bytes of a found image as a sender would recognise them (for quarantine): decoded from base64 where needed.</summary>
    public static ReadOnlyMemory<byte> BytesOf(IngestItem item, FoundImage image)
    {
        if (image.Pixels is not null) return ReadOnlyMemory<byte>.Empty;
        if (image.Own is { } own) return own;
        var slice = item.Payload[image.Bytes];
        if (!image.Base64) return slice;
        var decoded = new byte[Base64.GetMaxDecodedFromUtf8Length(slice.Length)];
        return Base64.DecodeFromUtf8(slice.Span, decoded, out _, out int written) == OperationStatus.Done ? decoded.AsMemory(0, written) : slice;
    }

    /// <summary>A stable id for raw bytes without one: the topic and the first 16 hex digits of their SHA-256 (the same after a redelivery).</summary>
    public static string ContentId(string prefix, ReadOnlySpan<byte> payload)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(payload, hash);
        return $"{prefix}/{Convert.ToHexStringLower(hash[..8])}";
    }

    private static List<FoundImage> FindInFile(IngestItem item, string file, ImageShape shape, DecodeLimits limits)
    {
        // The source's own limit (Ingest:Folder:MaxFileBytes) also caps what a compressed file may expand to: a
        // 64 MiB gzip of zeros would otherwise expand to the command line's 640 MB, several GB as floats.
        if (item.MaxBytes > 0) limits = limits with { MaxBytes = item.MaxBytes, MaxExpandedBytes = item.MaxBytes };
        var load = DatasetLoader.Load(file, new DatasetOptions { Shape = shape, Limits = limits });
        if (load.Images.Count + load.Rejected.Count == 0) throw new InputRejectedException(item.Id, RejectReason.Empty, "the batch file holds no images");
        var found = new List<FoundImage>(load.Images.Count);
        for (int i = 0; i < load.Images.Count; i++)
            found.Add(new FoundImage($"{item.Id}#{load.Images.Ids[i].Split('#').Last()}", item.Label, item.Metadata) { Pixels = load.Images, Index = i });
        // Images the reader refused stay refused, each under its own id.
        foreach (var r in load.Rejected)
            found.Add(new FoundImage($"{item.Id}#{r.Item.Split('#').Last()}", item.Label, item.Metadata) { Rejection = r });
        return found;
    }

    private static List<FoundImage> FindInJson(IngestItem item)
    {
        var reader = new Utf8JsonReader(item.Payload.Span, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Skip });
        reader.Read();
        var found = new List<FoundImage>();
        if (reader.TokenType == JsonTokenType.StartArray)
        {
            ReadEnvelopes(ref reader, item, found);
        }
        else
        {
            // An envelope, or {"items": [...]}: look ahead for "items" without giving up the single-envelope reading.
            var probe = reader;
            if (HasItemsArray(ref probe))
            {
                while (reader.Read() && !(reader.TokenType == JsonTokenType.PropertyName && reader.CurrentDepth == 1 && reader.ValueTextEquals("items"u8)))
                    if (reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray && reader.CurrentDepth > 1) reader.Skip();
                reader.Read();
                ReadEnvelopes(ref reader, item, found);
            }
            else
            {
                found.Add(ReadEnvelope(ref reader, item, null));
            }
        }
        if (found.Count == 0) throw new InputRejectedException(item.Id, RejectReason.Empty, "the batch holds no images");
        return found;
    }

    private static bool HasItemsArray(ref Utf8JsonReader reader)
    {
        while (reader.Read())
        {
            if (reader.TokenType == JsonTokenType.EndObject && reader.CurrentDepth == 0) return false;
            if (reader.TokenType != JsonTokenType.PropertyName || reader.CurrentDepth != 1) continue;
            bool items = reader.ValueTextEquals("items"u8);
            reader.Read();
            if (items && reader.TokenType == JsonTokenType.StartArray) return true;
            reader.Skip();
        }
        return false;
    }

    private static void ReadEnvelopes(ref Utf8JsonReader reader, IngestItem item, List<FoundImage> found)
    {
        int i = 0;
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            int index = i++;
            if (reader.TokenType != JsonTokenType.StartObject)
            {
                int start = (int)reader.TokenStartIndex;
                reader.Skip();
                found.Add(Refused(item, $"{item.Id}#{index}", RejectReason.Corrupt, "an envelope must be a JSON object", start..(int)reader.BytesConsumed));
                continue;
            }
            found.Add(ReadEnvelope(ref reader, item, index));
        }
    }

    /// <summary>Reads one envelope object, the reader on its StartObject; leaves the reader on its EndObject.</summary>
    /// <param name="index">Its place in a batch (its id is then the item's id and #index unless it names one).</param>
    private static FoundImage ReadEnvelope(ref Utf8JsonReader reader, IngestItem item, int? index)
    {
        if (reader.TokenType != JsonTokenType.StartObject) throw new InputRejectedException(item.Id, RejectReason.Corrupt, "an envelope must be a JSON object");
        int depth = reader.CurrentDepth;
        int objectStart = (int)reader.TokenStartIndex;
        string? id = null, source = null;
        Range? image = null;
        bool escaped = false, imageIsString = true;
        Dictionary<string, string>? metadata = null;
        while (reader.Read() && !(reader.TokenType == JsonTokenType.EndObject && reader.CurrentDepth == depth))
        {
            if (reader.TokenType != JsonTokenType.PropertyName) continue;
            if (reader.ValueTextEquals("id"u8))
            {
                reader.Read();
                if (reader.TokenType == JsonTokenType.String) id = reader.GetString();
                else reader.Skip();
            }
            else if (reader.ValueTextEquals("source"u8))
            {
                reader.Read();
                if (reader.TokenType == JsonTokenType.String) source = reader.GetString();
                else reader.Skip();
            }
            else if (reader.ValueTextEquals("image"u8))
            {
                reader.Read();
                imageIsString = reader.TokenType == JsonTokenType.String;
                if (imageIsString)
                {
                    // The token's position is the opening quote: the text follows it.
                    int start = (int)reader.TokenStartIndex + 1;
                    image = start..(start + reader.ValueSpan.Length);
                    escaped = reader.ValueIsEscaped;
                }
                else
                {
                    reader.Skip();
                }
            }
            else if (reader.ValueTextEquals("metadata"u8))
            {
                reader.Read();
                if (reader.TokenType == JsonTokenType.StartObject) metadata = ReadMetadata(ref reader);
                else reader.Skip();
            }
            else
            {
                reader.Read();
                reader.Skip();
            }
        }
        var imageId = id is { Length: > 0 } ? id : index is { } n ? $"{item.Id}#{n}" : item.Id;
        var label = source ?? item.Label;
        var meta = metadata ?? (IReadOnlyDictionary<string, string>?)item.Metadata;
        var own = objectStart..(int)reader.BytesConsumed; // the envelope's text, for quarantine
        if (image is not { } range || !imageIsString)
            return Refused(item, imageId, RejectReason.Corrupt, "the envelope has no \"image\" (base64) field", own, label);
        // Base64 text has no characters JSON must escape, but a sender may still write "\/": such a rare one is unescaped here.
        if (escaped) return Unescaped(item, imageId, label, meta, range, own);
        return new FoundImage(imageId, label, meta) { Bytes = range, Base64 = true };
    }

    private static FoundImage Unescaped(IngestItem item, string id, string label, IReadOnlyDictionary<string, string>? metadata, Range range, Range envelope)
    {
        var text = JsonSerializer.Deserialize<string>(item.Payload.Span[(range.Start.Value - 1)..(range.End.Value + 1)]) ?? "";
        byte[] bytes;
        try { bytes = Convert.FromBase64String(text); }
        catch (FormatException) { return Refused(item, id, RejectReason.Corrupt, "\"image\" is not valid base64", envelope, label); }
        return new FoundImage(id, label, metadata) { Own = bytes };
    }

    private static Dictionary<string, string> ReadMetadata(ref Utf8JsonReader reader)
    {
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        int depth = reader.CurrentDepth;
        while (reader.Read() && !(reader.TokenType == JsonTokenType.EndObject && reader.CurrentDepth == depth))
        {
            if (reader.TokenType != JsonTokenType.PropertyName) continue;
            var name = reader.GetString()!;
            reader.Read();
            if (reader.TokenType == JsonTokenType.String)
            {
                metadata[name] = reader.GetString()!;
            }
            else
            {
                using var doc = JsonDocument.ParseValue(ref reader);
                metadata[name] = doc.RootElement.GetRawText();
            }
        }
        return metadata;
    }

    /// <param name="bytes">The refused element's own text in the payload, which is what is quarantined.</param>
    private static FoundImage Refused(IngestItem item, string id, RejectReason reason, string detail, Range bytes, string? label = null) =>
        new(id, label ?? item.Label, item.Metadata) { Rejection = new InputRejectedException(id, reason, detail), Bytes = bytes };
}
