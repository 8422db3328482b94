using System.Text.Json;
using AnomalyMonitor.Core.Data;
using AnomalyMonitor.Tests.Support;

namespace AnomalyMonitor.Tests.Cli;

/// <summary>The command line as a user runs it: a real process, real files, real training.</summary>
public sealed class CliTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static void WriteFolder(string root, ImageSet set)
    {
        for (int i = 0; i < set.Count; i++)
        {
            var cls = Path.Combine(root, set.Labels[i] == 0 ? "blob" : set.Labels[i] == 1 ? "stripes" : "noise");
            Directory.CreateDirectory(cls);
            File.WriteAllBytes(Path.Combine(cls, $"{i:D4}.png"), Synthetic.Png(set.Image(i).ToArray(), set.Shape.Width));
        }
    }

    [Fact]
    public async Task Train_evaluate_and_score_from_an_image_folder()
    {
        var train = _dir.File("train");
        var test = _dir.File("test");
        WriteFolder(train, Synthetic.Set(blobs: 240, stripes: 10, noise: 10, seed: 21));
        WriteFolder(test, Synthetic.Set(blobs: 40, stripes: 20, noise: 20, seed: 22));
        var model = _dir.File("model");

        var trained = await CliProcess.RunAsync("train", "--data", train, "--normal-class", "blob", "--out", model,
            "--epochs", "8", "--batch-size", "32", "--seed", "3", "--noise", "gaussian:0.2");
        Assert.True(trained.ExitCode == 0, trained.Stderr + trained.Stdout);
        Assert.Contains("epoch 8/8", trained.Stdout); // plain lines when not on a terminal
        Assert.Contains("threshold:", trained.Stdout);
        // 180 training codes of 64 values carry one Gaussian, not the five the default asks for.
        Assert.Contains("latent density: one Gaussian on 64-value codes (5 asked", trained.Stdout);
        Assert.Matches(@"on its calibration: flags \d+\.\d\d% of \d+ held-out normals; skew -?\d+\.\d\d", trained.Stdout);

        var evaluated = await CliProcess.RunAsync("evaluate", "--model", model, "--data", test, "--json", "--plots", _dir.File("plots"));
        Assert.True(evaluated.ExitCode == 0, evaluated.Stderr);
        using var json = JsonDocument.Parse(evaluated.Stdout);
        var r = json.RootElement;
        foreach (var field in new[] { "threshold", "flagged", "total", "accuracy", "precision", "recall", "f1", "auroc", "aupr", "confusion" })
            Assert.True(r.TryGetProperty(field, out _), $"--json lacks '{field}'");
        Assert.Equal(80, r.GetProperty("total").GetInt32());
        Assert.True(r.GetProperty("auroc").GetDouble() > 0.95, $"AUROC {r.GetProperty("auroc")}");
        var c = r.GetProperty("confusion");
        Assert.Equal(80, c.GetProperty("tp").GetInt32() + c.GetProperty("fp").GetInt32() + c.GetProperty("tn").GetInt32() + c.GetProperty("fn").GetInt32());
        foreach (var png in new[] { "reconstructions.png", "error-histogram.png", "loss-curves.png" })
            Assert.True(new FileInfo(Path.Combine(_dir.File("plots"), png)).Length > 1000, png);

        var text = await CliProcess.RunAsync("evaluate", "--model", model, "--data", test, "--replay");
        Assert.Contains("auroc:", text.Stdout);
        Assert.Contains("flagged:", text.Stdout);
        // 40 normals never fill the window (200): the replay judges by the calibration, exactly as evaluate does.
        var flagged = System.Text.RegularExpressions.Regex.Match(text.Stdout, @"^flagged:\s+(\d+) / 80", System.Text.RegularExpressions.RegexOptions.Multiline);
        Assert.True(flagged.Success, text.Stdout);
        Assert.Contains($"replayed in order through the service's rolling judge", text.Stdout);
        Assert.Matches($@"\n  flagged:\s+{flagged.Groups[1].Value} / 80\n", text.Stdout);

        File.WriteAllText(_dir.File("bad.png"), "not an image");
        var scored = await CliProcess.RunAsync("score", "--model", model, Path.Combine(test, "blob", "0000.png"), Path.Combine(test, "noise", "0079.png"), _dir.File("bad.png"));
        Assert.Equal(2, scored.ExitCode);
        var lines = scored.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains(lines, l => l.Contains("0000.png") && l.EndsWith("normal"));
        Assert.Contains(lines, l => l.Contains("0079.png") && l.EndsWith("anomaly"));
        Assert.Contains("bad.png: unsupported", scored.Stderr);
    }

    [Theory]
    [InlineData("train")]
    [InlineData("evaluate")]
    [InlineData("score")]
    public async Task Every_command_has_help(string command)
    {
        var help = await CliProcess.RunAsync(command, "--help");
        Assert.Equal(0, help.ExitCode);
        Assert.Contains("--model", command == "train" ? help.Stdout.Replace("--out", "--model", StringComparison.Ordinal) : help.Stdout);
    }

    [Fact]
    public async Task No_subcommand_prints_help()
    {
        var result = await CliProcess.RunAsync();
        Assert.Equal(0, result.ExitCode);
        Assert.Contains("train", result.Stdout);
        Assert.Contains("evaluate", result.Stdout);
    }

    [Fact]
    public async Task A_missing_model_is_one_clear_line()
    {
        var result = await CliProcess.RunAsync("score", "--model", _dir.File("none"), _dir.File("x.png"));
        Assert.Equal(3, result.ExitCode);
        Assert.StartsWith("error: Model directory", result.Stderr.Trim());
        Assert.DoesNotContain("   at ", result.Stderr);
    }
}
