using AnomalyMonitor.Core.Imaging;
using AnomalyMonitor.Core.Models;
using AnomalyMonitor.Core.Runtime;
using TorchSharp;

namespace AnomalyMonitor.Tests.Core;

public class ModelTests
{
    public ModelTests() => TorchRuntime.EnsureLoaded();

    [Fact]
    public void TorchSharp_loads_and_runs_a_forward_pass()
    {
        using var model = AutoencoderFactory.Create(ModelSpec.Create(ModelSpec.Conv, ImageShape.Mnist));
        using var input = torch.rand(2, 1, 28, 28);
        using var output = model.forward(input);
        Assert.Equal(new long[] { 2, 1, 28, 28 }, output.shape);
        Assert.True(output.min().item<float>() >= 0 && output.max().item<float>() <= 1, "the sigmoid output must lie in [0,1]");
    }

    [Theory]
    [InlineData(ModelSpec.Conv, 178_001)]
    [InlineData(ModelSpec.ConvPool, 74_497)]
    [InlineData(ModelSpec.Dense, 101_200)]
    public void Worksheet_parameter_counts_at_28x28x1(string architecture, long expected)
    {
        using var model = AutoencoderFactory.Create(ModelSpec.Create(architecture, ImageShape.Mnist));
        Assert.Equal(expected, AutoencoderFactory.ParameterCount(model));
    }

    [Fact]
    public void Conv_encoder_and_decoder_split_as_in_the_worksheet()
    {
        using var model = (ConvAutoencoder)AutoencoderFactory.Create(ModelSpec.Create(ModelSpec.Conv, ImageShape.Mnist));
        Assert.Equal(69_008, AutoencoderFactory.ParameterCount(model.Encoder));
        Assert.Equal(108_993, AutoencoderFactory.ParameterCount(model.Decoder));
    }

    [Theory]
    [InlineData(ModelSpec.Conv, 1, 16, 16)]
    [InlineData(ModelSpec.Conv, 3, 32, 48)]
    [InlineData(ModelSpec.ConvPool, 3, 32, 48)]
    [InlineData(ModelSpec.ConvPool, 1, 20, 12)]
    [InlineData(ModelSpec.Dense, 3, 12, 8)]
    public void Every_architecture_reconstructs_its_input_shape(string architecture, int channels, int height, int width)
    {
        using var model = AutoencoderFactory.Create(ModelSpec.Create(architecture, new ImageShape(channels, height, width)));
        using var input = torch.rand(3, channels, height, width);
        using var output = model.forward(input);
        Assert.Equal(input.shape, output.shape);
    }

    [Theory]
    [InlineData(2, 28, 28)]
    [InlineData(1, 30, 28)]
    [InlineData(1, 28, 0)]
    public void Shapes_that_are_not_supported_are_refused_with_the_reason(int channels, int height, int width)
    {
        var e = Assert.Throws<ArgumentException>(() => AutoencoderFactory.Create(ModelSpec.Create(ModelSpec.Conv, new ImageShape(channels, height, width))));
        Assert.Contains("must be", e.Message);
    }

    [Fact]
    public void Unknown_architecture_lists_the_choices()
    {
        var e = Assert.Throws<ArgumentException>(() => AutoencoderFactory.Create(ModelSpec.Create("vae", ImageShape.Mnist)));
        Assert.Contains("conv-pool", e.Message);
    }

    [Fact]
    public void Auto_device_says_what_it_picked()
    {
        var (device, description) = TorchRuntime.ResolveDevice("auto");
        Assert.Equal(torch.cuda.is_available() ? DeviceType.CUDA : DeviceType.CPU, device.type);
        Assert.StartsWith("auto:", description);
        Assert.Equal(DeviceType.CPU, TorchRuntime.ResolveDevice("cpu").Device.type);
        Assert.Throws<ArgumentException>(() => TorchRuntime.ResolveDevice("tpu"));
        if (!torch.cuda.is_available())
            Assert.Contains("CUDA is not available", Assert.Throws<ArgumentException>(() => TorchRuntime.ResolveDevice("cuda:0")).Message);
    }
}
