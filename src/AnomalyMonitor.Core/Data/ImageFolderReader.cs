using AnomalyMonitor.Core.Imaging;

namespace AnomalyMonitor.Core.Data;

/// <summary>
/// Reads a folder of PNG/JPEG/BMP images. Subfolders are classes (their names are the labels, numbers
/// where every name is a number); images directly in the folder are unlabelled. A bad file is
/// refused with its reason and the rest are read.
/// </summary>
public static class ImageFolderReader
{
    public static (ImageSet Images, List<InputRejectedException> Rejected) Read(string root, ImageShape? shape, DecodeLimits limits, int? limit = null)
    {
        var classDirs = Directory.GetDirectories(root).OrderBy(d => d, StringComparer.Ordinal).ToList();
        var names = classDirs.Select(Path.GetFileName).Select(n => n!).ToList();
        bool numeric = names.Count > 0 && names.All(n => int.TryParse(n, out _));
        var files = new List<(string Path, int Label)>();
        foreach (var f in Directory.GetFiles(root).Order(StringComparer.Ordinal))
            files.Add((f, ImageSet.NoLabel));
        for (int i = 0; i < classDirs.Count; i++)
        {
            int label = numeric ? int.Parse(names[i], System.Globalization.CultureInfo.InvariantCulture) : i;
            foreach (var f in Directory.EnumerateFiles(classDirs[i], "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
                files.Add((f, label));
        }

        var target = shape ?? InferShape(files.Select(f => f.Path), limits);
        var builder = new ImageSetBuilder(target, files.Count);
        var rejected = new List<InputRejectedException>();
        foreach (var (path, label) in files)
        {
            if (limit is { } max && builder.Count >= max) break;
            try
            {
                var info = new FileInfo(path);
                if (info.Length > limits.MaxBytes)
                    throw new InputRejectedException(path, RejectReason.TooLarge, $"{info.Length} bytes exceeds the limit of {limits.MaxBytes}");
                ImageDecoder.Decode(File.ReadAllBytes(path), path, target, limits, builder.Next());
                builder.Commit(label, Path.GetRelativePath(root, path));
            }
            catch (InputRejectedException e)
            {
                rejected.Add(e);
            }
        }
        return (builder.Build(numeric ? null : names), rejected);
    }

    /// <summary>The size of the first readable image, rounded down to a multiple of 4, with 3 channels if it is in colour.</summary>
    private static ImageShape InferShape(IEnumerable<string> paths, DecodeLimits limits)
    {
        foreach (var path in paths)
        {
            try
            {
                var bytes = File.ReadAllBytes(path);
                if (!ImageDecoder.LooksLikeImage(bytes)) continue;
                using var bitmap = SkiaSharp.SKBitmap.Decode(bytes);
                if (bitmap is null || (long)bitmap.Width * bitmap.Height > limits.MaxPixels) continue;
                bool colour = false;
                foreach (var c in bitmap.Pixels)
                {
                    if (c.Red != c.Green || c.Green != c.Blue) { colour = true; break; }
                }
                return new ImageShape(colour ? 3 : 1, Math.Max(4, bitmap.Height / 4 * 4), Math.Max(4, bitmap.Width / 4 * 4));
            }
            catch (IOException)
            {
                // Unreadable files are reported when the folder is read; keep looking for a usable one.
            }
        }
        throw new InputRejectedException(paths.FirstOrDefault() ?? "(folder)", RejectReason.Empty, "the folder holds no readable image");
    }
}
