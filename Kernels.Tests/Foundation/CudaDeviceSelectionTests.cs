using Kernels.Runtime;
using Kernels.Tests.Harness;
using Xunit;

namespace Kernels.Tests.Foundation;

/// <summary>Choosing a CUDA device by ordinal, in code and through <c>KERNELS_DEVICE=cuda:N</c>.</summary>
public class CudaDeviceSelectionTests
{
    [Theory]
    [InlineData("cuda:0", DeviceKind.Cuda, 0)]
    [InlineData("cuda:3", DeviceKind.Cuda, 3)]
    [InlineData(" GPU:12 ", DeviceKind.Cuda, 12)]
    [InlineData("cuda", DeviceKind.Cuda, 0)]
    [InlineData("cpu", DeviceKind.Cpu, 0)]
    [InlineData(null, DeviceKind.Auto, 0)]
    public void ParsesAnOrdinal(string? value, DeviceKind kind, int ordinal) =>
        Assert.Equal((kind, ordinal), ComputeDevice.Parse(value));

    [Theory]
    [InlineData("cuda:")]
    [InlineData("cuda:-1")]
    [InlineData("cuda:x")]
    [InlineData("cpu:0")]
    [InlineData("auto:1")]
    [InlineData("cuda:1:2")]
    public void RejectsMalformedOrdinals(string value)
    {
        var e = Assert.Throws<ArgumentException>(() => ComputeDevice.Parse(value));
        Assert.Contains(ComputeDevice.EnvironmentVariable, e.Message);
        Assert.Contains(value, e.Message);
    }

    [Fact]
    public void OrdinalsOutsideTheVisibleDevicesAreRefused()
    {
        int count = ComputeDevice.CudaDeviceCount;
        if (count == 0)
        {
            Assert.Throws<InvalidOperationException>(() => ComputeDevice.Cuda(0));
            return;
        }
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => ComputeDevice.Cuda(count));
        Assert.Equal("ordinal", e.ParamName);
        Assert.Throws<ArgumentOutOfRangeException>(() => ComputeDevice.Cuda(-1));
    }

    [Fact]
    public void EveryVisibleDeviceIsItsOwnSingletonAndOrdinalZeroIsTheDefaultCuda()
    {
        if (!ComputeDevice.CudaAvailable) Assert.Skip("needs a CUDA device");
        Assert.Same(ComputeDevice.Get(DeviceKind.Cuda), ComputeDevice.Cuda(0));
        for (int i = 0; i < ComputeDevice.CudaDeviceCount; i++)
        {
            var device = ComputeDevice.Cuda(i);
            Assert.Same(device, ComputeDevice.Cuda(i));
            using var t = device.Upload<float>([1f, 2f, 3f]);
            Assert.Same(device, t.Device);
            Assert.Equal([1f, 2f, 3f], t.ToArray());
        }
    }
}
