using AnomalyMonitor.Core.Data;
using AnomalyMonitor.Core.Imaging;
using AnomalyMonitor.Samples;
using AnomalyMonitor.State;
using AnomalyMonitor.Telemetry;
using AnomalyMonitor.Tests.Support;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Options;

namespace AnomalyMonitor.Tests.Samples;

/// <summary>
/// The store keeps 8-bit images at one byte a pixel and anything else as float32, and a retrained model reads
/// back exactly the floats that were judged, whichever way they were stored, stores written before included.
/// </summary>
public sealed class SampleFormatTests : IDisposable
{
    private static readonly ImageShape Shape = new(1, 8, 8);
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static byte[] Levels(int seed) => [.. Enumerable.Range(0, Shape.PixelCount).Select(i => (byte)((i * 37 + seed * 11) % 256))];

    [Fact]
    public void Eight_bit_images_decode_to_the_same_floats_from_gray_png_rgb_png_and_idx_and_pack_back_to_their_bytes()
    {
        var bytes = Levels(1);
        bytes[0] = 0;
        bytes[1] = 255;
        var png = ImageEncoder.EncodePng(bytes.Select(b => b / 255f).ToArray(), Shape);
        var fromPng = ImageDecoder.Decode(png, "frame.png", Shape);
        var idx = Path.Combine(_dir.Path, "images-idx3-ubyte");
        File.WriteAllBytes(idx, DataFiles.IdxImages([bytes], Shape.Height, Shape.Width));
        var fromIdx = DatasetLoader.Load(idx, new DatasetOptions { Shape = Shape }).Images.Pixels;

        Assert.Equal(fromIdx, fromPng); // bit for bit: both read their levels from the same table
        using (var rgba = ImageEncoder.ToBitmap(fromIdx, Shape)) // gray sent as RGB, as many cameras and tools write it
            Assert.Equal(fromIdx, ImageDecoder.Decode(ImageEncoder.EncodePng(rgba), "frame-rgba.png", Shape));
        Assert.Equal(bytes, PixelBytes.TryPack(fromPng));
        Assert.Equal(fromPng, PixelBytes.Unpack(PixelBytes.Pack(fromPng), Shape.PixelCount));
    }

    [Theory]
    [InlineData(0.5f)]      // between two levels (127.5/255)
    [InlineData(1e-7f)]     // near a level, not on it
    [InlineData(float.NaN)]
    [InlineData(-0.25f)]
    [InlineData(1.5f)]
    public void Pixels_off_the_8_bit_levels_are_kept_as_float32(float odd)
    {
        var pixels = Levels(2).Select(b => PixelBytes.Levels[b]).ToArray();
        pixels[5] = odd;
        Assert.Null(PixelBytes.TryPack(pixels));
        var blob = PixelBytes.Pack(pixels);
        Assert.Equal(4 * Shape.PixelCount, blob.Length);
        var back = PixelBytes.Unpack(blob, Shape.PixelCount);
        Assert.Equal(BitConverter.SingleToInt32Bits(odd), BitConverter.SingleToInt32Bits(back[5]));
        Assert.Equal(pixels.Where((_, i) => i != 5), back.Where((_, i) => i != 5));
    }

    [Fact]
    public void A_blob_of_neither_size_is_an_error_that_says_so()
    {
        var error = Assert.Throws<InvalidDataException>(() => PixelBytes.Unpack(new byte[10], Shape.PixelCount));
        Assert.Contains("10 bytes", error.Message);
    }

    [Fact]
    public void The_store_keeps_8_bit_samples_at_a_byte_a_pixel_and_reads_back_every_kind_exactly()
    {
        var eightBit = Levels(3).Select(b => PixelBytes.Levels[b]).ToArray();
        var smooth = Enumerable.Range(0, Shape.PixelCount).Select(i => i / (float)Shape.PixelCount / 3f).ToArray();
        var options = Options.Create(new NormalStoreOptions { Path = "normals.db" });
        using (var store = new NormalSampleStore(options, new PathResolver(_dir.Path), new MonitorMetrics()))
            store.AddRange([Sample("eight", eightBit), Sample("smooth", smooth)], Shape);
        // A store written before the byte format: its float32 blob must still read.
        var legacy = Levels(4).Select(b => PixelBytes.Levels[b]).ToArray();
        using (var db = new SqliteConnection($"Data Source={Path.Combine(_dir.Path, "normals.db")};Pooling=False"))
        {
            db.Open();
            using var insert = db.CreateCommand();
            insert.CommandText = "INSERT INTO samples(item_id, source, received, score, model_version, channels, height, width, pixels) VALUES ('legacy','t','2026-01-01T00:00:00.0000000+00:00',0.01,1,1,8,8,$p)";
            insert.Parameters.AddWithValue("$p", System.Runtime.InteropServices.MemoryMarshal.AsBytes(legacy.AsSpan()).ToArray());
            insert.ExecuteNonQuery();
            using var sizes = db.CreateCommand();
            sizes.CommandText = "SELECT item_id, length(pixels) FROM samples ORDER BY seq";
            using var reader = sizes.ExecuteReader();
            var lengths = new Dictionary<string, long>();
            while (reader.Read()) lengths[reader.GetString(0)] = reader.GetInt64(1);
            Assert.Equal(Shape.PixelCount, lengths["eight"]);
            Assert.Equal(4 * Shape.PixelCount, lengths["smooth"]);
        }

        using var reopened = new NormalSampleStore(options, new PathResolver(_dir.Path), new MonitorMetrics());
        var snapshot = reopened.Snapshot(Shape, DateTimeOffset.MaxValue);
        Assert.Equal(["eight", "smooth", "legacy"], snapshot.Images.Ids);
        Assert.Equal([.. eightBit, .. smooth, .. legacy], snapshot.Images.Pixels);
        Assert.Equal(eightBit, reopened.Find("eight", Shape));
    }

    private static NewSample Sample(string id, float[] pixels) => new(id, "t", DateTimeOffset.UnixEpoch, 0.01, 1, pixels);
}
