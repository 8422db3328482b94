using System.Globalization;
using static TorchSharp.torch;

namespace AnomalyMonitor.Benchmarks;

/// <summary>
/// Test-time views for the latent score (ARNet's scoring, on the code): each image is also encoded moved by
/// a pixel or turned a little, and its score is the mean over the views. A model trained to restore such
/// moves codes a moved normal near the unmoved one; an anomaly's codes scatter. The views are fixed, so a
/// score is reproducible. Tried for the default detector and not taken (docs/benchmarks.md, section 2b).
/// </summary>
internal sealed record ScoreViews(double Rotation, double Shift)
{
    public static readonly ScoreViews None = new(0, 0);

    public bool IsNone => Rotation <= 0 && Shift <= 0;

    /// <summary>The identity, then ±Shift pixels along each axis, then ±Rotation degrees.</summary>
    public IReadOnlyList<(double Degrees, double Dx, double Dy)> Moves()
    {
        var moves = new List<(double, double, double)> { (0, 0, 0) };
        if (Shift > 0) moves.AddRange([(0, Shift, 0), (0, -Shift, 0), (0, 0, Shift), (0, 0, -Shift)]);
        if (Rotation > 0) moves.AddRange([(Rotation, 0, 0), (-Rotation, 0, 0)]);
        return moves;
    }

    public int Count => Moves().Count;

    /// <summary>"none" or "views:rot=10,shift=1": the same options as the training's affine augmentation.</summary>
    public static ScoreViews Parse(string text)
    {
        var parts = text.Trim().ToLowerInvariant().Split(':', 2);
        if (parts[0] is "none" or "") return None;
        if (parts[0] != "views") throw new FormatException($"Score views '{text}' are not none or views:rot=<degrees>,shift=<pixels>.");
        var moves = AnomalyMonitor.Core.Training.Augmentation.Parse("affine:" + (parts.Length > 1 ? parts[1] : ""));
        return new ScoreViews(moves.MaxRotation, moves.MaxShift);
    }

    public override string ToString() => IsNone ? "none"
        : $"views:rot={Rotation.ToString(CultureInfo.InvariantCulture)},shift={Shift.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>V·N x C x H x W: every image in each view, view after view (the identity first).</summary>
    public Tensor Apply(Tensor batch)
    {
        if (IsNone) return batch;
        var moves = Moves();
        long n = batch.shape[0], c = batch.shape[1], h = batch.shape[2], w = batch.shape[3];
        var theta = new float[moves.Count * 6];
        for (int v = 0; v < moves.Count; v++)
        {
            var (deg, dx, dy) = moves[v];
            double a = deg * Math.PI / 180;
            theta[(6 * v) + 0] = (float)Math.Cos(a);
            theta[(6 * v) + 1] = (float)-Math.Sin(a);
            theta[(6 * v) + 2] = (float)(2 * dx / w);
            theta[(6 * v) + 3] = (float)Math.Sin(a);
            theta[(6 * v) + 4] = (float)Math.Cos(a);
            theta[(6 * v) + 5] = (float)(2 * dy / h);
        }
        using var t = tensor(theta, [moves.Count, 1, 2, 3], device: batch.device);
        var perImage = t.expand(moves.Count, n, 2, 3).reshape(moves.Count * n, 2, 3);
        var grid = nn.functional.affine_grid(perImage, [moves.Count * n, c, h, w], align_corners: false);
        var repeated = batch.unsqueeze(0).expand(moves.Count, n, c, h, w).reshape(moves.Count * n, c, h, w);
        return nn.functional.grid_sample(repeated, grid, GridSampleMode.Bilinear, GridSamplePaddingMode.Zeros, align_corners: false);
    }

    /// <summary>The mean over the views of V·N per-view scores, one per image.</summary>
    public Tensor Mean(Tensor perView, long count) => IsNone ? perView : perView.reshape(-1, count).mean([0]);
}
