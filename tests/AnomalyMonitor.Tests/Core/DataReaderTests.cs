using System.Text;
using AnomalyMonitor.Core.Data;
using AnomalyMonitor.Core.Imaging;
using AnomalyMonitor.Tests.Support;

namespace AnomalyMonitor.Tests.Core;

public class DataReaderTests
{
    private static readonly ImageShape Shape16 = new(1, 16, 16);

    private static (List<byte[]> Images, List<int> Labels) Digits(int n, int size = 16)
    {
        var rng = new Random(2);
        var images = Enumerable.Range(0, n).Select(_ => Synthetic.ToBytes(Synthetic.Blob(rng, size))).ToList();
        return (images, Enumerable.Range(0, n).Select(i => i % 3).ToList());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Idx_directory_gives_each_split_with_labels(bool gzip)
    {
        using var dir = new TempDir();
        var (images, labels) = Digits(12);
        byte[] Maybe(byte[] b) => gzip ? DataFiles.Gzip(b) : b;
        string ext = gzip ? ".gz" : "";
        File.WriteAllBytes(dir.File("train-images-idx3-ubyte" + ext), Maybe(DataFiles.IdxImages(images, 16, 16)));
        File.WriteAllBytes(dir.File("train-labels-idx1-ubyte" + ext), Maybe(DataFiles.IdxLabels(labels)));
        File.WriteAllBytes(dir.File("t10k-images-idx3-ubyte" + ext), Maybe(DataFiles.IdxImages(images.Take(5).ToList(), 16, 16)));
        File.WriteAllBytes(dir.File("t10k-labels-idx1-ubyte" + ext), Maybe(DataFiles.IdxLabels(labels.Take(5).ToList())));

        var train = DatasetLoader.Load(dir.Path, new DatasetOptions { Split = DatasetSplit.Train });
        Assert.Equal(12, train.Images.Count);
        Assert.Equal(Shape16, train.Images.Shape);
        Assert.Equal(labels, train.Images.Labels);
        Assert.Equal(images[3][17] / 255f, train.Images.Image(3)[17], 6);

        var test = DatasetLoader.Load(dir.Path, new DatasetOptions { Split = DatasetSplit.Test });
        Assert.Equal(5, test.Images.Count);

        var onlyOnes = DatasetLoader.Load(dir.Path, new DatasetOptions { OnlyClass = "1" });
        Assert.Equal(4, onlyOnes.Images.Count);
        Assert.All(onlyOnes.Images.Labels, l => Assert.Equal(1, l));
    }

    [Fact]
    public void Idx_resized_and_converted_to_rgb_on_request()
    {
        using var dir = new TempDir();
        var (images, _) = Digits(3, size: 20);
        var path = dir.File("x-images-idx3-ubyte");
        File.WriteAllBytes(path, DataFiles.IdxImages(images, 20, 20));
        var load = DatasetLoader.Load(path, new DatasetOptions { Shape = new ImageShape(3, 12, 12) });
        Assert.Equal(3, load.Images.Count);
        Assert.Equal(new ImageShape(3, 12, 12), load.Images.Shape);
        var img = load.Images.Image(0);
        Assert.Equal(img[5], img[144 + 5], 6); // gray replicated into R, G and B
    }

    [Fact]
    public void Truncated_idx_is_rejected_with_the_file_named()
    {
        using var dir = new TempDir();
        var (images, _) = Digits(4);
        var bytes = DataFiles.IdxImages(images, 16, 16);
        var path = dir.File("cut-images-idx3-ubyte");
        File.WriteAllBytes(path, bytes[..(bytes.Length - 100)]);
        var e = Assert.Throws<InputRejectedException>(() => DatasetLoader.Load(path, new DatasetOptions()));
        Assert.Equal(RejectReason.Truncated, e.Reason);
        Assert.Contains(path, e.Message);
    }

    /// <summary>Headers whose numbers a reader once trusted: each is a refusal naming the file, not another exception.</summary>
    [Theory]
    [InlineData("v2-header-length.npy", RejectReason.Truncated)]
    [InlineData("negative-shape.npy", RejectReason.Corrupt)]
    [InlineData("text-shape.npy", RejectReason.Corrupt)]
    [InlineData("huge-shape.npy", RejectReason.TooLarge)]
    [InlineData("empty-images-idx3-ubyte", RejectReason.WrongDimensions)]
    public void Malformed_headers_are_refused_with_the_file_named(string name, RejectReason reason)
    {
        using var dir = new TempDir();
        var raw = Digits(4).Images.SelectMany(b => b).ToArray();
        byte[] bytes = name switch
        {
            // Version 2 stores the header length as a uint32: 0xFFFFFFFF read as an int is -1.
            "v2-header-length.npy" => [0x93, .. "NUMPY"u8, 2, 0, 0xFF, 0xFF, 0xFF, 0xFF],
            "negative-shape.npy" => DataFiles.Npy("|u1", [-1, 16, 16], raw),
            "text-shape.npy" => Replace(DataFiles.Npy("|u1", [4, 16, 16], raw), "(4, 16, 16)", "(x, 16, 16)"),
            "huge-shape.npy" => DataFiles.Npy("|u1", [100_000_000, 100_000_000, 100_000_000], raw),
            // 2,700,000 images of 0x0 pixels in 16 bytes: no pixel to check the length against.
            _ => [0, 0, 8, 3, 0, 0x29, 0x32, 0xE0, 0, 0, 0, 0, 0, 0, 0, 0],
        };
        var path = dir.File(name);
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<InputRejectedException>(() => DatasetLoader.Load(path, new DatasetOptions()));
        Assert.Equal(reason, e.Reason);
        Assert.Contains(path, e.Message);
    }

    private static byte[] Replace(byte[] bytes, string from, string to)
    {
        var text = Encoding.Latin1.GetString(bytes);
        Assert.Contains(from, text);
        return Encoding.Latin1.GetBytes(text.Replace(from, to, StringComparison.Ordinal));
    }

    [Fact]
    public void Npy_uint8_and_float32_read_to_the_same_pixels()
    {
        using var dir = new TempDir();
        var (images, _) = Digits(4);
        var raw = images.SelectMany(b => b).ToArray();
        File.WriteAllBytes(dir.File("u8.npy"), DataFiles.Npy("|u1", [4, 16, 16], raw));
        File.WriteAllBytes(dir.File("f32.npy"), DataFiles.NpyFloat([4, 16, 16], raw.Select(b => b / 255f).ToArray()));
        var a = DatasetLoader.Load(dir.File("u8.npy"), new DatasetOptions()).Images;
        var b = DatasetLoader.Load(dir.File("f32.npy"), new DatasetOptions()).Images;
        Assert.Equal(4, a.Count);
        Assert.Equal(a.Pixels, b.Pixels);
    }

    [Fact]
    public void Npz_picks_the_split_and_labels()
    {
        using var dir = new TempDir();
        var (images, labels) = Digits(6);
        var raw = images.SelectMany(b => b).ToArray();
        var path = dir.File("data.npz");
        DataFiles.Npz(path,
            ("x_train", DataFiles.Npy("|u1", [6, 16, 16], raw)),
            ("y_train", DataFiles.Npy("<i8", [6], labels.SelectMany(l => BitConverter.GetBytes((long)l)).ToArray())),
            ("x_test", DataFiles.Npy("|u1", [2, 16, 16], raw[..512])));
        var train = DatasetLoader.Load(path, new DatasetOptions { Split = DatasetSplit.Train });
        Assert.Equal(6, train.Images.Count);
        Assert.Equal(labels, train.Images.Labels);
        Assert.Equal(2, DatasetLoader.Load(path, new DatasetOptions { Split = DatasetSplit.Test }).Images.Count);
    }

    [Fact]
    public void A_limit_on_a_folder_stops_the_reading_there_and_a_class_limit_counts_that_class()
    {
        using var dir = new TempDir();
        var rng = new Random(5);
        foreach (var cls in new[] { "0", "1" })
        {
            Directory.CreateDirectory(dir.File(cls));
            for (int i = 0; i < 8; i++) File.WriteAllBytes(Path.Combine(dir.File(cls), $"{i}.png"), Synthetic.Png(Synthetic.Blob(rng, 16), 16));
        }
        File.WriteAllText(dir.File("1/z-broken.png"), "not an image"); // last in order: read only if the limit is ignored

        var first = DatasetLoader.Load(dir.Path, new DatasetOptions { Shape = Shape16, Limit = 5 });
        Assert.Equal(5, first.Images.Count);
        Assert.Empty(first.Rejected);
        var ones = DatasetLoader.Load(dir.Path, new DatasetOptions { Shape = Shape16, Limit = 5, OnlyClass = "1" });
        Assert.Equal([1, 1, 1, 1, 1], ones.Images.Labels);
    }

    [Fact]
    public void Image_folder_labels_from_class_subfolders_and_rejects_each_bad_file_with_its_reason()
    {
        using var dir = new TempDir();
        var rng = new Random(4);
        foreach (var cls in new[] { "0", "1" })
        {
            Directory.CreateDirectory(dir.File(cls));
            for (int i = 0; i < 3; i++) File.WriteAllBytes(Path.Combine(dir.File(cls), $"{i}.png"), Synthetic.Png(Synthetic.Blob(rng, 16), 16));
        }
        var good = Synthetic.Png(Synthetic.Blob(rng, 16), 16);
        File.WriteAllBytes(dir.File("1/empty.png"), []);
        File.WriteAllBytes(dir.File("1/truncated.png"), good[..(good.Length / 2)]);
        File.WriteAllBytes(dir.File("1/corrupt.png"), [.. good[..16], .. Enumerable.Repeat((byte)0x5A, 200)]);
        File.WriteAllText(dir.File("1/notes.png"), "this is not an image");
        File.WriteAllBytes(dir.File("1/huge.png"), Synthetic.Png(Synthetic.Noise(rng, 64), 64));

        var load = DatasetLoader.Load(dir.Path, new DatasetOptions { Shape = Shape16, Limits = DecodeLimits.Default with { MaxBytes = 2000 } });
        Assert.Equal(6, load.Images.Count);
        Assert.Equal([0, 0, 0, 1, 1, 1], load.Images.Labels);
        var reasons = load.Rejected.ToDictionary(r => Path.GetFileName(r.Item), r => r.Reason);
        Assert.Equal(RejectReason.Empty, reasons["empty.png"]);
        Assert.Equal(RejectReason.Truncated, reasons["truncated.png"]);
        Assert.Contains(reasons["corrupt.png"], new[] { RejectReason.Corrupt, RejectReason.Truncated });
        Assert.Equal(RejectReason.Unsupported, reasons["notes.png"]);
        Assert.Equal(RejectReason.TooLarge, reasons["huge.png"]);
        Assert.All(load.Rejected, r => Assert.Contains(r.Item, r.Message));
    }

    [Fact]
    public void Wrong_dimensions_are_rejected_when_resizing_is_off_and_resized_otherwise()
    {
        var png = Synthetic.Png(Synthetic.Blob(new Random(1), 20), 20);
        var e = Assert.Throws<InputRejectedException>(() =>
            ImageDecoder.Decode(png, "cam-1/frame.png", Shape16, DecodeLimits.Default with { AllowResize = false }));
        Assert.Equal(RejectReason.WrongDimensions, e.Reason);
        Assert.Contains("20x20", e.Message);
        Assert.Equal(256, ImageDecoder.Decode(png, "cam-1/frame.png", Shape16).Length);
    }

    [Fact]
    public void Png_round_trip_keeps_pixels_and_rgb_becomes_luma()
    {
        var blob = Synthetic.Blob(new Random(9), 16);
        var decoded = ImageDecoder.Decode(Synthetic.Png(blob, 16), "x.png", Shape16);
        for (int i = 0; i < blob.Length; i++) Assert.Equal(blob[i], decoded[i], 0.5f / 255 + 1e-6f); // 8-bit PNG

        var rgb = ImageEncoder.EncodePng([.. Enumerable.Repeat(1f, 16), .. Enumerable.Repeat(0f, 32)], new ImageShape(3, 4, 4));
        var gray = ImageDecoder.Decode(rgb, "red.png", new ImageShape(1, 4, 4));
        Assert.Equal(0.299f, gray[0], 2); // pure red -> BT.601 luma
    }
}
