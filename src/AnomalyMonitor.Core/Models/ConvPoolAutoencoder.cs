using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace AnomalyMonitor.Core.Models;

/// <summary>
/// Worksheets 002/004: same-padded convolutions with max-pooling down and nearest upsampling back.
/// 74,497 parameters at 28x28x1; the bottleneck is the 64 x H/4 x W/4 feature map.
/// </summary>
public sealed class ConvPoolAutoencoder : Module<Tensor, Tensor>
{
    private readonly Sequential encoder;
    private readonly Sequential decoder;

    public ConvPoolAutoencoder(int channels) : base(nameof(ConvPoolAutoencoder))
    {
        encoder = Sequential(
            Conv2d(channels, 32, 3, padding: 1), ReLU(), MaxPool2d(2),
            Conv2d(32, 64, 3, padding: 1), ReLU(), MaxPool2d(2));
        decoder = Sequential(
            Conv2d(64, 64, 3, padding: 1), ReLU(), Upsample(scale_factor: [2.0, 2.0], mode: UpsampleMode.Nearest),
            Conv2d(64, 32, 3, padding: 1), ReLU(), Upsample(scale_factor: [2.0, 2.0], mode: UpsampleMode.Nearest),
            Conv2d(32, channels, 3, padding: 1),
            Sigmoid());
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        using var latent = encoder.forward(input);
        return decoder.forward(latent);
    }

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
