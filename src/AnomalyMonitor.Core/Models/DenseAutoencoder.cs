using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace AnomalyMonitor.Core.Models;

/// <summary>Worksheet 001: 784-64-784. 101,200 parameters at 28x28x1 with latent 64.</summary>
public sealed class DenseAutoencoder : Module<Tensor, Tensor>, IAutoencoder
{
    private readonly Sequential encoder;
    private readonly Sequential decoder;

    public DenseAutoencoder(int channels, int height, int width, int latent) : base(nameof(DenseAutoencoder))
    {
        long pixels = (long)channels * height * width;
        encoder = Sequential(Flatten(), Linear(pixels, latent), ReLU());
        decoder = Sequential(Linear(latent, pixels), Sigmoid(), Unflatten(1, [channels, height, width]));
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
