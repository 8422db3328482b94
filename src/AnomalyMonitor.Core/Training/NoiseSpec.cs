using System.Globalization;
using static TorchSharp.torch;

namespace AnomalyMonitor.Core.Training;

public enum NoiseKind
{
    None,
    Gaussian,
    SaltPepper,
}

/// <summary>Denoising-autoencoder corruption of the input; the clean image stays the target.</summary>
public sealed record NoiseSpec(NoiseKind Kind, double Amount)
{
    public static readonly NoiseSpec None = new(NoiseKind.None, 0);

    /// <summary>Parses "none", "gaussian:0.5" (noise factor) or "salt-pepper:0.1" (fraction of pixels).</summary>
    public static NoiseSpec Parse(string text)
    {
        var parts = text.Trim().ToLowerInvariant().Split(':', 2);
        if (parts[0] is "none" or "") return None;
        var kind = parts[0] switch
        {
            "gaussian" => NoiseKind.Gaussian,
            "salt-pepper" or "saltpepper" or "s&p" => NoiseKind.SaltPepper,
            _ => throw new FormatException($"Noise '{text}' is not none, gaussian:<factor> or salt-pepper:<amount>."),
        };
        double amount = kind == NoiseKind.Gaussian ? 0.5 : 0.1;
        if (parts.Length == 2 && (!double.TryParse(parts[1], CultureInfo.InvariantCulture, out amount) || amount <= 0 || (kind == NoiseKind.SaltPepper && amount >= 1)))
            throw new FormatException($"Noise amount in '{text}' must be positive (and below 1 for salt-pepper).");
        return new NoiseSpec(kind, amount);
    }

    public Tensor Apply(Tensor clean) => Kind switch
    {
        NoiseKind.Gaussian => (clean + (randn_like(clean) * Amount)).clamp(0, 1),
        NoiseKind.SaltPepper => Corrupt(clean),
        _ => clean,
    };

    private Tensor Corrupt(Tensor clean)
    {
        var u = rand_like(clean);
        var salt = u < (Amount / 2);
        var pepper = u > (1 - (Amount / 2));
        return clean.masked_fill(salt, 1.0).masked_fill(pepper, 0.0);
    }

    public override string ToString() => Kind switch
    {
        NoiseKind.Gaussian => $"gaussian:{Amount.ToString(CultureInfo.InvariantCulture)}",
        NoiseKind.SaltPepper => $"salt-pepper:{Amount.ToString(CultureInfo.InvariantCulture)}",
        _ => "none",
    };
}
