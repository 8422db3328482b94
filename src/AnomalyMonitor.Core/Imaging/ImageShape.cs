namespace AnomalyMonitor.Core.Imaging;

/// <summary>The model input: channels (1 grayscale, 3 RGB), height and width, stored channel-first.</summary>
public readonly record struct ImageShape(int Channels, int Height, int Width)
{
    public static readonly ImageShape Mnist = new(1, 28, 28);

    public int PixelCount => Channels * Height * Width;

    public IEnumerable<string> Problems()
    {
        if (Channels is not (1 or 3))
            yield return $"channels must be 1 (grayscale) or 3 (RGB), was {Channels}";
        if (Height < 4 || Height % 4 != 0)
            yield return $"height must be a positive multiple of 4, was {Height}";
        if (Width < 4 || Width % 4 != 0)
            yield return $"width must be a positive multiple of 4, was {Width}";
    }

    public void Validate()
    {
        var problems = Problems().ToList();
        if (problems.Count > 0)
            throw new ArgumentException($"Invalid input shape {this}: {string.Join("; ", problems)}.");
    }

    /// <summary>Parses "28x28x1" (height x width x channels), the form used on the command line and in manifests.</summary>
    public static ImageShape Parse(string text)
    {
        var parts = text.Split('x', 'X');
        if (parts.Length is not (2 or 3) || !parts.All(p => int.TryParse(p, out _)))
            throw new FormatException($"'{text}' is not a shape; expected HEIGHTxWIDTH or HEIGHTxWIDTHxCHANNELS, e.g. 28x28x1.");
        var shape = new ImageShape(parts.Length == 3 ? int.Parse(parts[2], System.Globalization.CultureInfo.InvariantCulture) : 1,
            int.Parse(parts[0], System.Globalization.CultureInfo.InvariantCulture),
            int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture));
        shape.Validate();
        return shape;
    }

    public override string ToString() => $"{Height}x{Width}x{Channels}";
}
