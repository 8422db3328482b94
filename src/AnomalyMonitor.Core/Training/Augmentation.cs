using System.Globalization;
using static TorchSharp.torch;

namespace AnomalyMonitor.Core.Training;

/// <summary>
/// Restoration training (as in ARNet/ITAE): the encoder sees each training image slightly rotated and
/// shifted, and the decoder must give back the upright original. To restore the pose the code must
/// capture what the normal class looks like, not where its pixels happen to be, which is what makes the
/// latent-density score work. Small moves only: a flip or a half turn leaves an 8 an 8.
/// </summary>
public sealed record Augmentation(double MaxRotation, double MaxShift)
{
    public static readonly Augmentation None = new(0, 0);

    public bool IsNone => MaxRotation <= 0 && MaxShift <= 0;

    /// <summary>Parses "none" or "affine:rot=15,shift=2" (degrees, pixels; each drawn uniformly per image).</summary>
    public static Augmentation Parse(string text)
    {
        var parts = text.Trim().ToLowerInvariant().Split(':', 2);
        if (parts[0] is "none" or "") return None;
        if (parts[0] != "affine") throw new FormatException($"Augmentation '{text}' is not none or affine:rot=<degrees>,shift=<pixels>.");
        double rot = 0, shift = 0;
        foreach (var option in (parts.Length > 1 ? parts[1] : "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var kv = option.Split('=', 2);
            if (kv.Length != 2 || !double.TryParse(kv[1], NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || v < 0)
                throw new FormatException($"Augmentation option '{option}' is not rot=<degrees> or shift=<pixels> (non-negative).");
            if (kv[0] == "rot") rot = v;
            else if (kv[0] == "shift") shift = v;
            else throw new FormatException($"Augmentation option '{option}' is not rot=<degrees> or shift=<pixels>.");
        }
        if (rot > 45) throw new FormatException($"Augmentation rot={rot}: keep it small (at most 45 degrees): larger turns change what a digit is.");
        return new Augmentation(rot, shift);
    }

    public override string ToString() => IsNone ? "none"
        : $"affine:rot={MaxRotation.ToString(CultureInfo.InvariantCulture)},shift={MaxShift.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>Each image of the batch turned and moved by its own random amount (bilinear, zeros outside).</summary>
    public Tensor Apply(Tensor batch, Random rng)
    {
        if (IsNone) return batch;
        long n = batch.shape[0], h = batch.shape[2], w = batch.shape[3];
        var theta = new float[n * 6];
        for (int i = 0; i < n; i++)
        {
            double a = ((rng.NextDouble() * 2) - 1) * MaxRotation * Math.PI / 180;
            double dx = ((rng.NextDouble() * 2) - 1) * MaxShift, dy = ((rng.NextDouble() * 2) - 1) * MaxShift;
            theta[(6 * i) + 0] = (float)Math.Cos(a);
            theta[(6 * i) + 1] = (float)-Math.Sin(a);
            theta[(6 * i) + 2] = (float)(2 * dx / w); // affine_grid works in [-1, 1]: a pixel is 2/width
            theta[(6 * i) + 3] = (float)Math.Sin(a);
            theta[(6 * i) + 4] = (float)Math.Cos(a);
            theta[(6 * i) + 5] = (float)(2 * dy / h);
        }
        using var t = tensor(theta, [n, 2, 3], device: batch.device);
        var grid = nn.functional.affine_grid(t, [n, batch.shape[1], h, w], align_corners: false);
        return nn.functional.grid_sample(batch, grid, GridSampleMode.Bilinear, GridSamplePaddingMode.Zeros, align_corners: false);
    }
}
