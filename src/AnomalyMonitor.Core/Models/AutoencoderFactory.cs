using TorchSharp;
using static TorchSharp.torch;

namespace AnomalyMonitor.Core.Models;

public static class AutoencoderFactory
{
    public static nn.Module<Tensor, Tensor> Create(ModelSpec spec)
    {
        var problems = spec.Problems().ToList();
        if (problems.Count > 0)
            throw new ArgumentException($"Invalid model: {string.Join("; ", problems)}.");
        var s = spec.Shape;
        return spec.Architecture switch
        {
            ModelSpec.Conv => new ConvAutoencoder(s.Channels, s.Height, s.Width, spec.Latent),
            ModelSpec.ConvPool => new ConvPoolAutoencoder(s.Channels),
            ModelSpec.Dense => new DenseAutoencoder(s.Channels, s.Height, s.Width, spec.Latent),
            ModelSpec.ConvDeep => new DeepConvAutoencoder(s.Channels, s.Height, s.Width, spec.Latent),
            _ => throw new ArgumentException($"Unknown architecture '{spec.Architecture}'."),
        };
    }

    public static long ParameterCount(nn.Module module) => module.parameters().Sum(p => p.numel());
}
