using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;
using AnomalyMonitor.Core.Imaging;
using AnomalyMonitor.Core.Storage;

namespace AnomalyMonitor.Fleet;

/// <summary>
/// The retained message on Fleet:ModelTopic: one model version, whole. The manifest travels as written
/// (it carries the calibration, the weights' SHA-256 and the parameter count); the weights as base64.
/// </summary>
public sealed record ModelMessage(
    int Format, int Version, string Instance, DateTimeOffset PublishedAt, JsonElement Manifest, string Weights)
{
    public const int CurrentFormat = 1;

    public static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        // Base64 is full of '+', which the default encoder writes as six characters; these messages never reach HTML.
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>The message for a saved model directory.</summary>
    public static byte[] FromDirectory(string directory, int version, string instance, DateTimeOffset at)
    {
        var manifest = ModelFiles.ReadManifest(directory);
        using var doc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(directory, ModelFiles.ManifestFile)));
        var weights = File.ReadAllBytes(Path.Combine(directory, manifest.Weights.File));
        return JsonSerializer.SerializeToUtf8Bytes(new ModelMessage(CurrentFormat, version, instance, at, doc.RootElement.Clone(), Convert.ToBase64String(weights)), Json);
    }

    /// <summary>
    /// Parses and checks a message before anything is written: its form, the weights against the manifest's
    /// size and SHA-256, and the input shape against what this service judges. Throws
    /// <see cref="FleetModelRefused"/> with the reason (a metric label) and a sentence.
    /// </summary>
    public static (ModelMessage Message, ModelManifest Manifest, byte[] Weights) Verify(ReadOnlySpan<byte> payload, ImageShape expected)
    {
        ModelMessage? message;
        try
        {
            message = JsonSerializer.Deserialize<ModelMessage>(payload, Json);
        }
        catch (JsonException e)
        {
            throw new FleetModelRefused("corrupt", $"the message is not a model message ({e.Message})");
        }
        if (message is null || message.Manifest.ValueKind != JsonValueKind.Object || string.IsNullOrEmpty(message.Weights))
            throw new FleetModelRefused("corrupt", "the message lacks its manifest or weights");
        if (message.Format > CurrentFormat)
            throw new FleetModelRefused("format", $"the message has format {message.Format}; this service reads up to {CurrentFormat}");
        if (message.Version < 1) throw new FleetModelRefused("corrupt", $"version {message.Version} is not a registry version");
        ModelManifest manifest;
        try
        {
            manifest = message.Manifest.Deserialize<ModelManifest>(ModelManifest.Json) ?? throw new JsonException("empty manifest");
        }
        catch (JsonException e)
        {
            throw new FleetModelRefused("corrupt", $"its manifest does not read ({e.Message})");
        }
        if (manifest.Version != message.Version)
            throw new FleetModelRefused("corrupt", $"the message says v{message.Version} but its manifest says v{manifest.Version}");
        // The file name is written into the registry: a plain name only, never a path.
        if (manifest.Weights?.File is not { Length: > 0 } file || Path.GetFileName(file) != file || file.StartsWith('.') || file == ModelFiles.ManifestFile)
            throw new FleetModelRefused("corrupt", "its manifest names no plain weights file");
        var weights = new byte[message.Weights.Length / 4 * 3 + 3];
        if (!Convert.TryFromBase64String(message.Weights, weights, out int length))
            throw new FleetModelRefused("corrupt", "its weights are not valid base64");
        weights = weights[..length];
        if (length != manifest.Weights.Bytes)
            throw new FleetModelRefused("truncated", $"its weights are {length} bytes but the manifest says {manifest.Weights.Bytes}");
        var sha = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(weights));
        if (!string.Equals(sha, manifest.Weights.Sha256, StringComparison.Ordinal))
            throw new FleetModelRefused("checksum", "its weights do not match the SHA-256 in its manifest");
        var shape = new ImageShape(manifest.InputShape.Channels, manifest.InputShape.Height, manifest.InputShape.Width);
        if (shape != expected)
            throw new FleetModelRefused("shape", $"it takes {shape} images; this service judges {expected}");
        return (message, manifest, weights);
    }
}

/// <summary>A fleet model message that is not installed; the current model stays.</summary>
public sealed class FleetModelRefused(string reason, string message) : Exception(message)
{
    /// <summary>corrupt, truncated, checksum, shape, format or invalid: the metric label.</summary>
    public string Reason { get; } = reason;
}
