using AnomalyMonitor.Core.Imaging;

namespace AnomalyMonitor.Core.Data;

/// <summary>
/// Loads training or evaluation data from whatever the user points at: an IDX directory holding both
/// splits (as the MNIST download does), one IDX file, a .npy or .npz file, or a folder of images.
/// </summary>
public static class DatasetLoader
{
    public static DatasetLoadResult Load(string path, DatasetOptions options)
    {
        if (Directory.Exists(path))
        {
            return FindIdxPair(path, options.Split) is { } idx
                ? FromArrays(idx.Images, ReadIdx(idx.Images, options), idx.Labels is null ? null : IdxReader.ReadLabels(idx.Labels, options.Limits), options, $"IDX {Path.GetFileName(idx.Images)}")
                : FromFolder(path, options);
        }
        if (!File.Exists(path))
            throw new FileNotFoundException($"No data at '{path}': expected an IDX directory or file, a .npy/.npz file, or a folder of images.", path);

        var extension = Path.GetExtension(path).ToLowerInvariant();
        if (extension == ".npz")
        {
            var arrays = NpyReader.ReadNpz(path, options.Limits);
            var (imagesKey, labelsKey) = PickNpzArrays(path, arrays, options.Split);
            var labels = labelsKey is null ? null : arrays[labelsKey].Values.Select(v => (int)v).ToArray();
            return FromArrays(path, NpyReader.ToImages(arrays[imagesKey], $"{path}:{imagesKey}"), labels, options, $"npz {Path.GetFileName(path)}:{imagesKey}");
        }
        if (extension == ".npy")
        {
            using var stream = File.OpenRead(path);
            return FromArrays(path, NpyReader.ToImages(NpyReader.Read(stream, path, options.Limits), path), null, options, $"npy {Path.GetFileName(path)}");
        }
        if (IdxReader.IsIdxPath(path))
        {
            var labelsPath = SiblingLabels(path);
            return FromArrays(path, ReadIdx(path, options), labelsPath is null ? null : IdxReader.ReadLabels(labelsPath, options.Limits), options, $"IDX {Path.GetFileName(path)}");
        }
        if (ImageDecoder.IsImagePath(path))
        {
            var shape = options.Shape ?? throw new ArgumentException("A single image needs the model's input shape.");
            var pixels = ImageDecoder.Decode(File.ReadAllBytes(path), path, shape, options.Limits);
            return new DatasetLoadResult(new ImageSet(shape, pixels, [ImageSet.NoLabel], [Path.GetFileName(path)]), [], path);
        }
        throw new InputRejectedException(path, RejectReason.Unsupported, "not an IDX, .npy, .npz or image file, nor a folder");
    }

    private static RawImages ReadIdx(string path, DatasetOptions options) => IdxReader.ReadImages(path, options.Limits);

    private static DatasetLoadResult FromFolder(string path, DatasetOptions options)
    {
        // The limit stops the reading early only when every class is wanted: KeepClass picks from what was read.
        var (images, rejected) = ImageFolderReader.Read(path, options.Shape, options.Limits, options.OnlyClass is null ? options.Limit : null);
        images = KeepClass(images, options);
        if (options.Limit is { } limit && images.Count > limit)
            images = images.Subset(Enumerable.Range(0, limit).ToList());
        return new DatasetLoadResult(images, rejected, $"folder {path}");
    }

    private static DatasetLoadResult FromArrays(string item, RawImages raw, int[]? labels, DatasetOptions options, string description)
    {
        if (labels is not null && labels.Length != raw.Count)
            throw new InputRejectedException(item, RejectReason.WrongDimensions, $"{raw.Count} images but {labels.Length} labels");
        var shape = options.Shape ?? new ImageShape(raw.Channels == 1 ? 1 : 3, raw.Height / 4 * 4, raw.Width / 4 * 4);
        shape.Validate();
        string? onlyClass = options.OnlyClass;
        int? keep = onlyClass is null ? null : new ImageSet(shape, [], [], []).ResolveClass(onlyClass);
        if (keep is not null && labels is null)
            throw new ArgumentException($"--normal-class needs labels, and {description} has none.");

        var builder = new ImageSetBuilder(shape, Math.Min(raw.Count, options.Limit ?? raw.Count));
        var rejected = new List<InputRejectedException>();
        bool allowResize = options.Limits.AllowResize;
        for (int i = 0; i < raw.Count; i++)
        {
            if (options.Limit is { } limit && builder.Count >= limit) break;
            int label = labels?[i] ?? ImageSet.NoLabel;
            if (keep is not null && label != keep) continue;
            string id = $"{Path.GetFileName(item)}#{i}";
            try
            {
                PixelConverter.ToModelLayout(raw.Image(i), raw.Height, raw.Width, raw.Channels, shape, allowResize, id, builder.Next());
                builder.Commit(label, id);
            }
            catch (InputRejectedException e)
            {
                rejected.Add(e);
            }
        }
        return new DatasetLoadResult(builder.Build(), rejected, description);
    }

    private static ImageSet KeepClass(ImageSet images, DatasetOptions options)
    {
        if (options.OnlyClass is null) return images;
        int label = images.ResolveClass(options.OnlyClass);
        return images.Where(l => l == label);
    }

    /// <summary>Finds {train|t10k}-images-idx3-ubyte[.gz] and its labels in a directory.</summary>
    internal static (string Images, string? Labels)? FindIdxPair(string directory, DatasetSplit split)
    {
        string prefix = split == DatasetSplit.Train ? "train" : "t10k";
        var images = Directory.GetFiles(directory)
            .Where(f => Path.GetFileName(f).StartsWith(prefix + "-images", StringComparison.Ordinal) && IdxReader.IsIdxPath(f))
            .OrderBy(f => f.EndsWith(".gz", StringComparison.Ordinal) ? 1 : 0)
            .FirstOrDefault();
        return images is null ? null : (images, SiblingLabels(images));
    }

    private static string? SiblingLabels(string imagesPath)
    {
        var name = Path.GetFileName(imagesPath);
        if (!name.Contains("images", StringComparison.Ordinal)) return null;
        var candidate = Path.Combine(Path.GetDirectoryName(imagesPath)!, name.Replace("images", "labels", StringComparison.Ordinal).Replace("idx3", "idx1", StringComparison.Ordinal));
        return File.Exists(candidate) ? candidate : null;
    }

    private static (string Images, string? Labels) PickNpzArrays(string path, Dictionary<string, NpyArray> arrays, DatasetSplit split)
    {
        string[] imageKeys = split == DatasetSplit.Train
            ? ["x_train", "train_images", "images", "x", "data", "arr_0"]
            : ["x_test", "test_images", "images", "x", "data", "arr_0"];
        string[] labelKeys = split == DatasetSplit.Train
            ? ["y_train", "train_labels", "labels", "y", "arr_1"]
            : ["y_test", "test_labels", "labels", "y", "arr_1"];
        var images = imageKeys.FirstOrDefault(arrays.ContainsKey)
            ?? (arrays.Count == 1 ? arrays.Keys.First() : throw new InputRejectedException(path, RejectReason.Unsupported,
                $"cannot tell which array holds the images (found {string.Join(", ", arrays.Keys)}); name it x_train/x_test or images"));
        var labels = labelKeys.FirstOrDefault(k => arrays.ContainsKey(k) && k != images);
        return (images, labels);
    }
}
