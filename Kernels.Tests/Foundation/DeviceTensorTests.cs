using System.Numerics.Tensors;
using Kernels.Runtime;
using Kernels.Tensors;
using Kernels.Tests.Harness;
using Xunit;

namespace Kernels.Tests.Foundation;

public class DeviceTensorTests
{
    [Fact]
    public void RoundTripsSpansAndTensors()
    {
        var seed = Seeded.Create();
        var data = seed.Uniform(3 * 5, -1, 1);
        using var t = Devices.CpuSmall.Upload<float>(data, 3, 5);
        Assert.Equal([3, 5], t.Lengths.ToArray());
        Assert.Equal([5, 1], t.Strides.ToArray());
        Assert.Equal(data, t.ToArray());

        var host = Tensor.Create(data, [3, 5]);
        using var t2 = DeviceTensor.FromTensor<float>(Devices.CpuSmall, host.AsReadOnlyTensorSpan());
        var back = t2.ToTensor();
        Assert.Equal(host.Lengths.ToArray(), back.Lengths.ToArray());
        Assert.Equal(data, back.ToArray());
    }

    [Fact]
    public void SlicesRowsAndColumns()
    {
        var data = Enumerable.Range(0, 4 * 6).Select(i => (float)i).ToArray();
        using var t = Devices.CpuSmall.Upload<float>(data, 4, 6);
        var rows = t.ReadOnlySpan.Slice(1..3);
        Assert.True(rows.IsDense);
        Assert.Equal(data[6..18], rows.ToArray());

        var block = t.ReadOnlySpan.Slice(1..3, 2..5);
        Assert.False(block.IsDense);
        Assert.Equal([8f, 9, 10, 14, 15, 16], block.ToArray());
        Assert.Throws<ArgumentOutOfRangeException>(() => t.ReadOnlySpan.Slice(0..5));
    }

    [Fact]
    public void HalfCopiesAreBitCasts()
    {
        var host = new[] { (System.Half)1.5f, (System.Half)(-0.25f), System.Half.NaN, System.Half.Epsilon };
        using var t = DeviceTensor.FromHalf(Devices.CpuSmall, host, 4);
        var back = new System.Half[4];
        t.CopyTo(back);
        for (int i = 0; i < host.Length; i++)
            Assert.Equal(BitConverter.HalfToUInt16Bits(host[i]), BitConverter.HalfToUInt16Bits(back[i]));
    }

    [Fact]
    public void RejectsWrongLengths()
    {
        using var t = Devices.CpuSmall.Allocate<float>(2, 2);
        var ex = Assert.Throws<ArgumentException>(() => t.CopyFrom(new float[3]));
        Assert.Contains("[2, 2]", ex.Message);
        Assert.Throws<ArgumentException>(() => t.Span.Reshape(3));
    }

    [Fact]
    public void EmptyTensorsUploadAndDownload()
    {
        using var t = Devices.CpuSmall.Upload<float>([], 0);
        Assert.True(t.Span.IsDense);
        Assert.Empty(t.ToArray());
        using var m = Devices.CpuSmall.Allocate<float>(3, 0);
        Assert.Equal(0, m.FlattenedLength);
        m.CopyFrom(ReadOnlySpan<float>.Empty);
    }

    [Theory]
    [InlineData(null, DeviceKind.Auto)]
    [InlineData("", DeviceKind.Auto)]
    [InlineData("AUTO", DeviceKind.Auto)]
    [InlineData("cuda", DeviceKind.Cuda)]
    [InlineData("cpu", DeviceKind.Cpu)]
    public void ParsesDeviceVariable(string? value, DeviceKind kind) => Assert.Equal(kind, ComputeDevice.ParseKind(value));

    [Fact]
    public void RejectsUnknownDeviceVariable() => Assert.Throws<ArgumentException>(() => ComputeDevice.ParseKind("tpu"));

    [Fact]
    public void CpuDevicesHaveTheDocumentedWarps()
    {
        Assert.Equal(4, Devices.CpuSmall.Accelerator.WarpSize);
        Assert.Equal(32, Devices.CpuWarp32.Accelerator.WarpSize);
        Assert.Same(ComputeDevice.CpuWarp32, ComputeDevice.Get(DeviceKind.Cpu));
        if (!ComputeDevice.CudaAvailable) Assert.Throws<InvalidOperationException>(() => ComputeDevice.Get(DeviceKind.Cuda));
    }
}
