using System.Globalization;
using AnomalyMonitor.Core.Data;
using AnomalyMonitor.Core.Evaluation;
using AnomalyMonitor.Core.Imaging;
using AnomalyMonitor.Core.Storage;
using ScottPlot;
using SkiaSharp;

namespace AnomalyMonitor.Plots;

/// <summary>The worksheets' figures: reconstructions (000), error histogram with threshold (001), loss curves (004).</summary>
internal static class EvaluationPlots
{
    public static IReadOnlyList<string> WriteAll(string directory, LoadedModel model, ImageSet images, EvaluationReport report)
    {
        Directory.CreateDirectory(directory);
        var written = new List<string>
        {
            Reconstructions(Path.Combine(directory, "reconstructions.png"), model, images, report),
            ErrorHistogram(Path.Combine(directory, "error-histogram.png"), model, report),
        };
        if (model.Manifest.History.Count > 0)
            written.Add(LossCurves(Path.Combine(directory, "loss-curves.png"), model.Manifest));
        return written;
    }

    public static string ErrorHistogram(string path, LoadedModel model, EvaluationReport report)
    {
        var plot = new Plot();
        var errors = report.Errors.Select(e => (double)e).ToArray();
        double max = Math.Max(errors.Max(), report.Threshold) * 1.05;
        void AddGroup(IEnumerable<double> values, string label, Color color)
        {
            var list = values.ToList();
            if (list.Count == 0) return;
            var histogram = ScottPlot.Statistics.Histogram.WithBinCount(60, 0, max);
            histogram.AddRange(list);
            var bars = plot.Add.Bars(histogram.Bins, histogram.Counts);
            bars.Color = color.WithAlpha(0.6);
            foreach (var bar in bars.Bars) { bar.Size = histogram.FirstBinSize; bar.LineWidth = 0; bar.FillColor = color.WithAlpha(0.6); }
            bars.LegendText = label;
        }
        if (report.IsAnomaly is { } truth)
        {
            AddGroup(errors.Where((_, i) => !truth[i]), "normal", Colors.SteelBlue);
            AddGroup(errors.Where((_, i) => truth[i]), "anomaly", Colors.OrangeRed);
        }
        else
        {
            AddGroup(errors, "all images", Colors.SteelBlue);
        }
        var mean = plot.Add.VerticalLine(model.Manifest.Calibration.Mean);
        mean.LegendText = $"calibration mean {model.Manifest.Calibration.Mean.ToString("G3", CultureInfo.InvariantCulture)}";
        mean.Color = Colors.Green;
        var threshold = plot.Add.VerticalLine(report.Threshold);
        threshold.LegendText = $"threshold {report.Threshold.ToString("G3", CultureInfo.InvariantCulture)} ({report.Policy})";
        threshold.Color = Colors.Black;
        threshold.LinePattern = LinePattern.Dashed;
        plot.Title("Reconstruction error");
        plot.XLabel($"per-image {model.Manifest.ErrorMetric.ToString().ToUpperInvariant()}");
        plot.YLabel("images");
        plot.ShowLegend();
        plot.SavePng(path, 900, 540);
        return path;
    }

    public static string LossCurves(string path, ModelManifest manifest)
    {
        var plot = new Plot();
        var epochs = manifest.History.Select(h => (double)h.Epoch).ToArray();
        var train = plot.Add.Scatter(epochs, manifest.History.Select(h => h.Loss).ToArray());
        train.LegendText = "loss";
        var withValidation = manifest.History.Where(h => h.ValidationLoss is not null).ToList();
        if (withValidation.Count > 0)
        {
            var val = plot.Add.Scatter(withValidation.Select(h => (double)h.Epoch).ToArray(), withValidation.Select(h => h.ValidationLoss!.Value).ToArray());
            val.LegendText = "validation loss";
        }
        plot.Title($"Training ({manifest.Architecture}, {manifest.Loss.ToString().ToUpperInvariant()} loss, best epoch {manifest.BestEpoch})");
        plot.XLabel("epoch");
        plot.YLabel("loss");
        plot.ShowLegend();
        plot.SavePng(path, 900, 540);
        return path;
    }

    /// <summary>Originals above reconstructions for the most normal and most anomalous images, with error and verdict.</summary>
    public static string Reconstructions(string path, LoadedModel model, ImageSet images, EvaluationReport report, int columns = 10)
    {
        var order = Enumerable.Range(0, images.Count).OrderBy(i => report.Errors[i]).ToList();
        var picked = order.Take(columns / 2).Concat(order.TakeLast(columns - (columns / 2))).Distinct().ToList();
        var subset = images.Subset(picked);
        var output = model.CreateScorer().Score(subset, 0, subset.Count, detailed: true);
        var shape = images.Shape;
        const int Cell = 112, Caption = 34;
        using var surface = SKSurface.Create(new SKImageInfo(Cell * picked.Count, (2 * Cell) + Caption));
        var canvas = surface.Canvas;
        canvas.Clear(SKColors.White);
        using var font = new SKFont(Typeface(), 12);
        using var ink = new SKPaint { IsAntialias = true };
        var sampling = new SKSamplingOptions(SKFilterMode.Nearest);
        for (int k = 0; k < picked.Count; k++)
        {
            using var original = ImageEncoder.ToBitmap(subset.Image(k), shape);
            using var reconstruction = ImageEncoder.ToBitmap(output.Reconstructions.AsSpan(k * shape.PixelCount, shape.PixelCount), shape);
            using var a = SKImage.FromBitmap(original);
            using var b = SKImage.FromBitmap(reconstruction);
            canvas.DrawImage(a, SKRect.Create(k * Cell, 0, Cell, Cell), sampling);
            canvas.DrawImage(b, SKRect.Create(k * Cell, Cell, Cell, Cell), sampling);
            var j = report.Judgements[picked[k]];
            ink.Color = j.IsAnomaly ? SKColors.Firebrick : SKColors.DarkGreen;
            canvas.DrawText(report.Errors[picked[k]].ToString("0.0000", CultureInfo.InvariantCulture), (k * Cell) + 6, (2 * Cell) + 14, font, ink);
            canvas.DrawText(j.IsAnomaly ? "anomaly" : "normal", (k * Cell) + 6, (2 * Cell) + 29, font, ink);
        }
        using var snapshot = surface.Snapshot();
        using var png = snapshot.Encode(SKEncodedImageFormat.Png, 100);
        File.WriteAllBytes(path, png.ToArray());
        return path;
    }

    // The NoDependencies Skia build has no fontconfig, so load a font file directly where the system has one.
    private static SKTypeface Typeface()
    {
        string[] candidates = ["/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/dejavu/DejaVuSans.ttf"];
        foreach (var c in candidates)
            if (File.Exists(c)) return SKTypeface.FromFile(c);
        return SKTypeface.Default;
    }
}
