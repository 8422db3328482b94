using System.Text;
using AnomalyMonitor.Core.Imaging;
using AnomalyMonitor.Ingest;
using AnomalyMonitor.Pipeline.Decoding;
using AnomalyMonitor.Tests.Support;

namespace AnomalyMonitor.Tests.Pipeline;

/// <summary>What the decode stage finds in a payload, and that it decodes each image to the same pixels as the plain decoder.</summary>
public sealed class PayloadDecoderTests
{
    private readonly RecordingSource _source = new();
    private static readonly ImageShape Shape = TestModel.Shape;

    private static float[] Plain(byte[] png)
    {
        var pixels = new float[Shape.PixelCount];
        ImageDecoder.Decode(png, "plain", Shape, DecodeLimits.Default, pixels);
        return pixels;
    }

    private float[] Decode(IngestItem item, FoundImage image)
    {
        var pixels = new float[Shape.PixelCount];
        PayloadDecoder.DecodeInto(item, image, Shape, DecodeLimits.Default, pixels);
        return pixels;
    }

    private IngestItem Item(string text) => _source.Item("t/cam/x", Encoding.UTF8.GetBytes(text));

    [Fact]
    public void Raw_bytes_are_one_image_under_the_item_id_and_label()
    {
        var png = TestModel.NormalPng(0);
        var item = _source.Item("t/cam/x", png);
        var found = Assert.Single(PayloadDecoder.Find(item, Shape, DecodeLimits.Default));
        Assert.Equal(("t/cam/x", "recording"), (found.Id, found.Source));
        Assert.Equal(Plain(png), Decode(item, found));
    }

    [Fact]
    public void Envelopes_single_array_and_items_keep_their_ids_sources_and_metadata()
    {
        var png = TestModel.NormalPng(1);
        var envelope = "{\"id\":\"e1\",\"image\":\"" + Convert.ToBase64String(png) + "\",\"source\":\"line-2\",\"metadata\":{\"lot\":\"7\",\"n\":3}}";
        var item = Item(envelope);
        var one = Assert.Single(PayloadDecoder.Find(item, Shape, DecodeLimits.Default));
        Assert.Equal(("e1", "line-2", "7", "3"), (one.Id, one.Source, one.Metadata!["lot"], one.Metadata["n"]));
        Assert.Equal(Plain(png), Decode(item, one));

        var array = PayloadDecoder.Find(Item($"[{envelope},{envelope.Replace("e1", "e2", StringComparison.Ordinal)}]"), Shape, DecodeLimits.Default);
        Assert.Equal(["e1", "e2"], array.Select(f => f.Id));
        // "items" after another property, and envelopes without ids: named by the item's id and their place.
        var anonymous = "{\"image\":\"" + Convert.ToBase64String(png) + "\"}";
        var items = PayloadDecoder.Find(Item("{\"batch\":{\"x\":[1,2]},\"items\":[" + anonymous + "," + anonymous + "]}"), Shape, DecodeLimits.Default);
        Assert.Equal(["t/cam/x#0", "t/cam/x#1"], items.Select(f => f.Id));
    }

    [Fact]
    public void A_base64_string_with_json_escapes_still_decodes()
    {
        // The first vetted normal whose base64 has a slash to escape.
        var png = Enumerable.Range(0, 20).Select(TestModel.NormalPng).First(p => Convert.ToBase64String(p).Contains('/', StringComparison.Ordinal));
        var escaped = Convert.ToBase64String(png).Replace("/", "\\/", StringComparison.Ordinal);
        var item = Item("{\"id\":\"e\",\"image\":\"" + escaped + "\"}");
        Assert.Equal(Plain(png), Decode(item, Assert.Single(PayloadDecoder.Find(item, Shape, DecodeLimits.Default))));
    }

    [Fact]
    public void Bad_payloads_are_refused_whole_and_bad_envelopes_one_by_one_with_a_reason()
    {
        Assert.Equal(RejectReason.Empty, Assert.Throws<InputRejectedException>(() => PayloadDecoder.Find(_source.Item("e"), Shape, DecodeLimits.Default)).Reason);
        Assert.Equal(RejectReason.Corrupt, Assert.Throws<InputRejectedException>(() => PayloadDecoder.Find(Item("{ nope"), Shape, DecodeLimits.Default)).Reason);
        Assert.Equal(RejectReason.Empty, Assert.Throws<InputRejectedException>(() => PayloadDecoder.Find(Item("[]"), Shape, DecodeLimits.Default)).Reason);
        Assert.Equal(RejectReason.TooLarge, Assert.Throws<InputRejectedException>(() =>
            PayloadDecoder.Find(_source.Item("big", new byte[100]), Shape, DecodeLimits.Default with { MaxBytes = 99 })).Reason);

        var good = "{\"id\":\"ok\",\"image\":\"" + Convert.ToBase64String(TestModel.NormalPng(0)) + "\"}";
        var item = Item($"[{good},{{\"id\":\"no-image\"}},{{\"id\":\"bad\",\"image\":\"%%%\"}},7]");
        var found = PayloadDecoder.Find(item, Shape, DecodeLimits.Default);
        Assert.Equal(["ok", "no-image", "bad", "t/cam/x#3"], found.Select(f => f.Id));
        Decode(item, found[0]);
        Assert.Contains("\"image\"", Assert.Throws<InputRejectedException>(() => Decode(item, found[1])).Message);
        Assert.Contains("base64", Assert.Throws<InputRejectedException>(() => Decode(item, found[2])).Message);
        Assert.Contains("object", Assert.Throws<InputRejectedException>(() => Decode(item, found[3])).Message);
    }

    [Fact]
    public void An_envelope_that_names_its_image_never_computes_the_items_id()
    {
        int computed = 0;
        var item = new IngestItem
        {
            Source = _source,
            IdFactory = _ => { computed++; return "hashed"; },
            Label = "t",
            Payload = Encoding.UTF8.GetBytes("{\"id\":\"named\",\"image\":\"" + Convert.ToBase64String(TestModel.NormalPng(0)) + "\"}"),
        };
        Assert.Equal("named", Assert.Single(PayloadDecoder.Find(item, Shape, DecodeLimits.Default)).Id);
        Assert.Equal(0, computed);
        Assert.Equal("hashed", item.Id);
        Assert.Equal(1, computed);
    }

    [Fact]
    public void A_content_id_is_stable_and_names_the_topic()
    {
        var png = TestModel.NormalPng(0);
        Assert.Equal(PayloadDecoder.ContentId("t/cam", png), PayloadDecoder.ContentId("t/cam", [.. png]));
        Assert.NotEqual(PayloadDecoder.ContentId("t/cam", png), PayloadDecoder.ContentId("t/cam", TestModel.NormalPng(1)));
        Assert.StartsWith("t/cam/", PayloadDecoder.ContentId("t/cam", png), StringComparison.Ordinal);
    }

    [Fact]
    public void Text_that_is_not_valid_utf8_is_a_refusal_of_the_item()
    {
        var b64 = Convert.ToBase64String(TestModel.NormalPng(0));
        // 0xFF can never occur in UTF-8; the reader only notices when the id is read as text.
        var payload = Encoding.UTF8.GetBytes("{\"id\":\"?\",\"image\":\"" + b64 + "\"}");
        payload[7] = 0xFF;
        var item = _source.Item("t/cam/x", payload);
        var e = Assert.Throws<InputRejectedException>(() => PayloadDecoder.Find(item, Shape, DecodeLimits.Default));
        Assert.Equal(RejectReason.Corrupt, e.Reason);
        Assert.Contains("UTF-8", e.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void A_refused_element_of_a_batch_keeps_its_own_text_for_quarantine_not_the_whole_message()
    {
        var good = "{\"id\":\"ok\",\"image\":\"" + Convert.ToBase64String(TestModel.NormalPng(0)) + "\"}";
        const string NoImage = "{\"id\":\"no-image\",\"source\":\"s\"}";
        const string BadBase64 = "{\"id\":\"bad\",\"image\":\"%%\\/\"}"; // escaped, so it goes through the unescaping path
        var item = Item($"[{good}, 42, {NoImage}, {BadBase64}, \"text\"]");
        var found = PayloadDecoder.Find(item, Shape, DecodeLimits.Default);
        string Quarantined(int i) => Encoding.UTF8.GetString(PayloadDecoder.BytesOf(item, found[i]).Span);
        Assert.Equal(5, found.Count);
        Assert.Null(found[0].Rejection);
        Assert.Equal("42", Quarantined(1));
        Assert.Equal(NoImage, Quarantined(2));
        Assert.Equal(BadBase64, Quarantined(3));
        Assert.Equal("\"text\"", Quarantined(4));
    }

    [Fact]
    public void A_batch_file_may_not_expand_past_the_sources_limit_gzipped_or_as_many_arrays()
    {
        using var dir = new TempDir();
        int side = Shape.Height, bytes = 1 << 20;
        List<byte[]> Blank(int n) => Enumerable.Range(0, n).Select(_ => new byte[side * side]).ToList();
        IngestItem Batch(string file) => new() { Source = _source, Id = Path.GetFileName(file), Label = "folder", BatchFile = file, MaxBytes = bytes };
        // Blank images gzip to almost nothing: a file far under the limit that expands past it.
        var bomb = dir.File("bomb-images-idx3-ubyte.gz");
        File.WriteAllBytes(bomb, DataFiles.Gzip(DataFiles.IdxImages(Blank(bytes / (side * side) + 10), side, side)));
        Assert.True(new FileInfo(bomb).Length < bytes / 50);
        var fits = dir.File("fits-images-idx3-ubyte.gz");
        File.WriteAllBytes(fits, DataFiles.Gzip(DataFiles.IdxImages(Blank(10), side, side)));
        // Two arrays each under the limit, over it together.
        var many = dir.File("many.npz");
        byte[] Half() => DataFiles.Npy("|u1", [bytes * 2 / 3 / (side * side), side, side], new byte[bytes * 2 / 3 / (side * side) * side * side]);
        DataFiles.Npz(many, ("x_train", Half()), ("x_test", Half()));

        foreach (var file in new[] { bomb, many })
        {
            var e = Assert.Throws<InputRejectedException>(() => PayloadDecoder.Find(Batch(file), Shape, DecodeLimits.Default));
            Assert.Equal(RejectReason.TooLarge, e.Reason);
        }
        Assert.Equal(10, PayloadDecoder.Find(Batch(fits), Shape, DecodeLimits.Default).Count);
    }
}
