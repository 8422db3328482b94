using AnomalyMonitor.State;
using System.Globalization;
using System.Text;
using AnomalyMonitor.Core.Storage;
using Microsoft.Extensions.Options;
using static TorchSharp.torch;

namespace AnomalyMonitor.Registry;

/// <summary>One version in the registry, as listed by `models list` and GET /api/models.</summary>
public sealed record ModelVersionInfo(int Version, string Directory, bool Current, bool Valid, string? Problem, ModelManifest? Manifest)
{
    public string? Decision => Manifest?.Extra is { } extra && extra.TryGetValue("gate", out var gate) && gate.TryGetProperty("decision", out var d) ? d.GetString() : null;

    /// <summary>"local" (trained here), or "fleet:&lt;instance&gt;" for a version received from the fleet's trainer.</summary>
    public string Origin => OriginOf(Directory);

    public static string OriginOf(string directory)
    {
        try
        {
            var path = System.IO.Path.Combine(directory, "provenance.json");
            if (!File.Exists(path)) return "local";
            using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllBytes(path));
            return doc.RootElement.TryGetProperty("instance", out var i) ? $"fleet:{i.GetString()}" : "fleet";
        }
        catch (Exception e) when (e is IOException or System.Text.Json.JsonException or UnauthorizedAccessException)
        {
            return "unknown";
        }
    }
}

/// <summary>
/// The model directory as a registry: Models:Path/v&lt;N&gt;/ holds each version, and the file "current"
/// names the one that judges. A version is written under a temporary name and renamed into place, and
/// "current" is replaced atomically, so a crash at any moment leaves "current" naming a complete model.
/// A model directory holding a manifest.json directly (a model trained by hand) also works, as version 0.
/// </summary>
public sealed class ModelRegistry(IOptions<ModelsOptions> options, PathResolver paths)
{
    public const string CurrentFile = "current";

    public string Root { get; } = paths.Resolve(options.Value.Path);

    /// <summary>Test hook: called after each step of a promotion ("saved", "switched"); throwing from it simulates a crash there.</summary>
    internal Action<string>? AfterStep { get; set; }

    public string PathOf(int version) => Path.Combine(Root, $"v{version}");

    /// <summary>The version "current" names, or null (no registry yet, or a standalone model).</summary>
    public int? CurrentVersion()
    {
        var pointer = Path.Combine(Root, CurrentFile);
        if (!File.Exists(pointer)) return null;
        var name = File.ReadAllText(pointer).Trim();
        return name.StartsWith('v') && int.TryParse(name.AsSpan(1), NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : null;
    }

    /// <summary>Where the current model lives: the directory itself (a standalone model) or the version "current" names.</summary>
    public string? CurrentPath()
    {
        // "current" wins: once a standalone model has been retrained, the registry takes over from it.
        if (CurrentVersion() is { } v && File.Exists(Path.Combine(PathOf(v), ModelFiles.ManifestFile))) return PathOf(v);
        return File.Exists(Path.Combine(Root, ModelFiles.ManifestFile)) ? Root : null;
    }

    /// <summary>Every v&lt;N&gt; directory, newest first, with whether its manifest reads.</summary>
    public IReadOnlyList<ModelVersionInfo> List()
    {
        var current = CurrentVersion();
        var list = new List<ModelVersionInfo>();
        foreach (var (version, dir) in VersionDirectories().OrderByDescending(v => v.Version))
        {
            try
            {
                list.Add(new ModelVersionInfo(version, dir, version == current, true, null, ModelFiles.ReadManifest(dir)));
            }
            catch (ModelLoadException e)
            {
                list.Add(new ModelVersionInfo(version, dir, version == current, false, e.Message, null));
            }
        }
        return list;
    }

    public int NextVersion() => VersionDirectories().Select(v => v.Version).DefaultIfEmpty(0).Max() + 1;

    /// <summary>Writes a new version: weights and manifest under a temporary name, then one rename makes it visible.</summary>
    public ModelManifest Save(int version, TorchSharp.torch.nn.Module module, ModelManifest manifest)
    {
        var final = PathOf(version);
        if (Directory.Exists(final)) throw new IOException($"Version v{version} already exists in {Root}.");
        var partial = Path.Combine(Root, $".v{version}.partial");
        if (Directory.Exists(partial)) Directory.Delete(partial, recursive: true);
        var saved = ModelFiles.Save(partial, module, manifest);
        Directory.Move(partial, final);
        AfterStep?.Invoke("saved");
        return saved;
    }

    /// <summary>
    /// A model trained by hand straight into Models:Path becomes version v0 before the first retrained
    /// version joins it, so that it can be listed and rolled back to. Its files are copied, not moved: the
    /// running service may still read them, and "current" takes precedence from then on.
    /// </summary>
    public void AdoptStandalone()
    {
        var manifest = Path.Combine(Root, ModelFiles.ManifestFile);
        if (CurrentVersion() is not null || !File.Exists(manifest) || Directory.Exists(PathOf(0))) return;
        var weights = ModelFiles.ReadManifest(Root).Weights.File;
        var partial = Path.Combine(Root, ".v0.partial");
        if (Directory.Exists(partial)) Directory.Delete(partial, recursive: true);
        Directory.CreateDirectory(partial);
        File.Copy(Path.Combine(Root, weights), Path.Combine(partial, weights));
        File.Copy(manifest, Path.Combine(partial, ModelFiles.ManifestFile));
        Directory.Move(partial, PathOf(0));
        SetCurrent(0);
    }

    /// <summary>Makes <paramref name="version"/> the current model, after checking that it loads.</summary>
    public void SetCurrent(int version)
    {
        var dir = PathOf(version);
        ModelFiles.ReadManifest(dir); // refuses a missing or damaged version before anything changes
        AtomicFile.Write(Path.Combine(Root, CurrentFile), Encoding.UTF8.GetBytes($"v{version}\n"));
        AfterStep?.Invoke("switched");
    }

    /// <summary>Loads a version fully (checksums and all) without changing anything.</summary>
    public LoadedModel Load(int version, Device device) => ModelFiles.Load(PathOf(version), device);

    /// <summary>
    /// Keeps the newest Models:KeepVersions versions, the current one and <paramref name="judging"/> (the one
    /// that judges: after a fallback from a damaged current, not the one "current" names); removes the rest
    /// and leftovers of interrupted saves.
    /// </summary>
    public IReadOnlyList<int> Prune(int judging = 0)
    {
        var current = CurrentVersion();
        var removed = new List<int>();
        foreach (var (version, dir) in VersionDirectories().OrderByDescending(v => v.Version).Skip(options.Value.KeepVersions))
        {
            if (version == current || version == judging) continue;
            Directory.Delete(dir, recursive: true);
            removed.Add(version);
        }
        if (Directory.Exists(Root))
        {
            foreach (var partial in Directory.GetDirectories(Root, ".v*.partial")) Directory.Delete(partial, recursive: true);
            foreach (var replaced in Directory.GetDirectories(Root, ".v*.replaced-*")) Directory.Delete(replaced, recursive: true);
        }
        return removed;
    }

    private IEnumerable<(int Version, string Path)> VersionDirectories()
    {
        if (!Directory.Exists(Root)) yield break;
        foreach (var dir in Directory.GetDirectories(Root, "v*"))
            if (int.TryParse(Path.GetFileName(dir).AsSpan(1), NumberStyles.None, CultureInfo.InvariantCulture, out var v)) yield return (v, dir);
    }
}
