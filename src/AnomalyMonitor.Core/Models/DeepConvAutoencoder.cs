using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace AnomalyMonitor.Core.Models;

/// <summary>
/// The worksheet's strided conv autoencoder with a deeper encoder: a 3x3 convolution before each
/// downsampling one, and 128 channels at H/4. The decoder is the worksheet's. Meant for the latent
/// score, whose cost at scoring time is the encoder alone.
/// </summary>
public sealed class DeepConvAutoencoder : Module<Tensor, Tensor>, IAutoencoder
{
    private readonly Sequential encoder;
    private readonly Sequential decoder;

    public DeepConvAutoencoder(int channels, int height, int width, int latent) : base(nameof(DeepConvAutoencoder))
    {
        long h4 = height / 4, w4 = width / 4;
        encoder = Sequential(
            Conv2d(channels, 32, 3, padding: 1), ReLU(),
            Conv2d(32, 64, 3, stride: 2, padding: 1), ReLU(),
            Conv2d(64, 64, 3, padding: 1), ReLU(),
            Conv2d(64, 128, 3, stride: 2, padding: 1), ReLU(),
            Flatten(),
            Linear(128 * h4 * w4, latent));
        decoder = Sequential(
            Linear(latent, 64 * h4 * w4), ReLU(),
            Unflatten(1, [64, h4, w4]),
            ConvTranspose2d(64, 64, 3, stride: 2, padding: 1, output_padding: 1), ReLU(),
            ConvTranspose2d(64, 32, 3, stride: 2, padding: 1, output_padding: 1), ReLU(),
            Conv2d(32, channels, 3, padding: 1),
            Sigmoid());
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        using var latent = encoder.forward(input);
        return decoder.forward(latent);
    }

    public Tensor Encode(Tensor input) => encoder.forward(input);

    public Tensor Decode(Tensor latent) => decoder.forward(latent);

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            encoder.Dispose();
            decoder.Dispose();
        }
        base.Dispose(disposing);
    }
}
