using static TorchSharp.torch;

namespace AnomalyMonitor.Core.Models;

/// <summary>An autoencoder whose code can be read: the latent-density score fits a distribution to it.</summary>
public interface IAutoencoder
{
    /// <summary>N x latent codes.</summary>
    Tensor Encode(Tensor input);

    Tensor Decode(Tensor latent);
}
