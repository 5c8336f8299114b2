using System.Numerics.Tensors;
using Kernels.Tensors;
using Kernels.Tests.Harness;
using Xunit;

namespace Kernels.Tests.Foundation;

/// <summary>CopyTo(TensorSpan&lt;T&gt;): the counterpart of CopyFrom(ReadOnlyTensorSpan&lt;T&gt;) and ToTensor() for host memory the caller owns.</summary>
public class TensorSpanCopyToTests
{
    [Fact]
    public void CopiesADenseTensorIntoAHostTensor()
    {
        var data = Enumerable.Range(0, 3 * 5).Select(i => (float)i - 7).ToArray();
        using var t = Devices.CpuSmall.Upload<float>(data, 3, 5);
        var host = Tensor.Create(new float[15], [3, 5]);
        t.CopyTo(host.AsTensorSpan());
        Assert.Equal(data, host.ToArray());
    }

    [Fact]
    public void CopiesAStridedDeviceViewIntoAStridedHostSpan()
    {
        // Device view: rows 1..3, columns 2..5 of a 4×6 matrix (not dense). Host destination: every other column of a
        // 2×6 array (strides [6, 2]), so both sides are strided and the untouched host elements must stay as they were.
        var data = Enumerable.Range(0, 4 * 6).Select(i => (float)i).ToArray();
        using var t = Devices.CpuSmall.Upload<float>(data, 4, 6);
        var view = t.ReadOnlySpan.Slice(1..3, 2..5);
        var backing = Enumerable.Repeat(-1f, 12).ToArray();
        var destination = new TensorSpan<float>(backing, [2, 3], [6, 2]);
        view.CopyTo(destination);
        Assert.Equal([8f, -1, 9, -1, 10, -1, 14, -1, 15, -1, 16, -1], backing);
    }

    [Fact]
    public void WritableSpanAndHalfTensorsCopyToo()
    {
        var bits = new ushort[] { 0x3C00, 0xC000, 0x3555, 0x7BFF, 0x0001, 0x8000 };
        var halves = bits.Select(b => Fp16.AsHalf(b)).ToArray();
        using var t = Devices.CpuSmall.Upload<ILGPU.Half>(halves, 2, 3);
        var host = new ILGPU.Half[6];
        t.Span.CopyTo(new TensorSpan<ILGPU.Half>(host, [2, 3]));
        Assert.Equal(bits, host.Select(Fp16.Bits).Select(b => (ushort)b).ToArray());
    }

    [Fact]
    public void RefusesOtherLengthsAndWritesNothing()
    {
        using var t = Devices.CpuSmall.Upload<float>(new float[] { 1, 2, 3, 4, 5, 6 }, 2, 3);
        var backing = Enumerable.Repeat(42f, 6).ToArray();
        var ex = Assert.Throws<ArgumentException>(() => t.CopyTo(new TensorSpan<float>(backing, [3, 2])));
        Assert.Equal("destination", ex.ParamName);
        Assert.Contains("[3, 2]", ex.Message);
        Assert.Contains("[2, 3]", ex.Message);
        Assert.Throws<ArgumentException>(() => t.CopyTo(new TensorSpan<float>(backing, [6])));
        Assert.All(backing, v => Assert.Equal(42f, v));
    }

    [Fact]
    public void RefusesADisposedTensorsView()
    {
        var t = Devices.CpuSmall.Upload<float>(new float[] { 1, 2 }, 2);
        var view = t.ReadOnlySpan;
        t.Dispose();
        Assert.Throws<ObjectDisposedException>(() => view.CopyTo(new TensorSpan<float>(new float[2], [2])));
    }
}
