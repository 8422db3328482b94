namespace AnomalyMonitor.Core.Data;

/// <summary>
/// A stack of images as read from an array file (IDX, npy): N images of height x width x channels,
/// interleaved, values already scaled to [0,1].
/// </summary>
internal sealed record RawImages(float[] Values, int Count, int Height, int Width, int Channels)
{
    public ReadOnlySpan<float> Image(int i) => Values.AsSpan(i * Height * Width * Channels, Height * Width * Channels);

    /// <summary>Interprets an array shape as images: (N,H,W), (N,H,W,C), (N,C,H,W) or flattened (N,H*W).</summary>
    public static RawImages FromArray(string item, long[] shape, float[] values)
    {
        int n = (int)shape[0];
        switch (shape.Length)
        {
            case 2:
                int side = (int)Math.Round(Math.Sqrt(shape[1]));
                if (side * side != shape[1])
                    throw new Imaging.InputRejectedException(item, Imaging.RejectReason.WrongDimensions,
                        $"a flat array of {shape[1]} values per image is not a square grayscale image");
                return new RawImages(values, n, side, side, 1);
            case 3:
                return new RawImages(values, n, (int)shape[1], (int)shape[2], 1);
            case 4 when shape[3] is 1 or 3 or 4:
                return new RawImages(values, n, (int)shape[1], (int)shape[2], (int)shape[3]);
            case 4 when shape[1] is 1 or 3:
                return new RawImages(ToInterleaved(values, n, (int)shape[1], (int)shape[2], (int)shape[3]), n, (int)shape[2], (int)shape[3], (int)shape[1]);
            default:
                throw new Imaging.InputRejectedException(item, Imaging.RejectReason.WrongDimensions,
                    $"array shape ({string.Join(", ", shape)}) is not a stack of images");
        }
    }

    private static float[] ToInterleaved(float[] chw, int n, int c, int h, int w)
    {
        var result = new float[chw.Length];
        int plane = h * w;
        for (int i = 0; i < n; i++)
            for (int ch = 0; ch < c; ch++)
                for (int p = 0; p < plane; p++)
                    result[(i * plane * c) + (p * c) + ch] = chw[(i * plane * c) + (ch * plane) + p];
        return result;
    }
}
