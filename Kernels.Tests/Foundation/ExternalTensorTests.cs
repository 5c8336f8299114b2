using System.Runtime.InteropServices;
using Kernels.Quantization;
using Kernels.Tensors;
using Kernels.Tests.Harness;
using Xunit;

namespace Kernels.Tests.Foundation;

/// <summary>DeviceTensor.WrapExternal on the CPU accelerator: kernels read and write the caller's memory in place.</summary>
public class ExternalTensorTests
{
    [Fact]
    public void KernelsReadAndWriteWrappedHostMemoryInPlace()
    {
        var seed = Seeded.Create();
        var device = Devices.CpuSmall;
        var input = seed.Normal(3 * 50);
        var output = Enumerable.Repeat(float.NaN, input.Length).ToArray();
        var pinIn = GCHandle.Alloc(input, GCHandleType.Pinned);
        var pinOut = GCHandle.Alloc(output, GCHandleType.Pinned);
        int released = 0;
        try
        {
            using var x = DeviceTensor.WrapExternal<float>(device, pinIn.AddrOfPinnedObject(), [3, 50], () => released++);
            using var y = DeviceTensor.WrapExternal<float>(device, pinOut.AddrOfPinnedObject(), [3, 50], () => released++);
            Assert.True(x.IsExternal);
            Assert.Equal([3, 50], x.Lengths.ToArray());
            using var q = BlockwiseQuantized.Quantize(x, CodeBook.DynamicSigned, 64);
            q.Dequantize(y);
            device.Synchronize();
            // The kernel wrote straight into the caller's array: compare it with the reference decode.
            var (codes, absmax) = BlockwiseReference.Quantize<float>(input, CodeBook.DynamicSigned, 64);
            Compare.Exact<float>(output, BlockwiseReference.Dequantize(codes, absmax, CodeBook.DynamicSigned, 64, input.Length), "in-place dequantize", seed);
            // And a write through the host array is what the device sees (no copy was taken).
            input[7] = 1234.5f;
            Assert.Equal(1234.5f, x.ToArray()[7]);
        }
        finally
        {
            Assert.Equal(2, released);
            pinIn.Free();
            pinOut.Free();
        }
    }

    [Fact]
    public void DisposeCallsReleaseOnceFreesNothingAndInvalidatesViews()
    {
        var data = new float[] { 1, 2, 3, 4 };
        var pin = GCHandle.Alloc(data, GCHandleType.Pinned);
        int released = 0;
        var t = DeviceTensor.WrapExternal<float>(Devices.CpuSmall, pin.AddrOfPinnedObject(), [2, 2], () => released++);
        var view = t.ReadOnlySpan;
        t.Dispose();
        t.Dispose();
        Assert.Equal(1, released);
        Assert.True(t.IsDisposed);
        Assert.Throws<ObjectDisposedException>(() => view.ToArray());
        Assert.Equal([1f, 2, 3, 4], data); // the memory is untouched
        pin.Free();
    }

    [Fact]
    public void RefusesBadPointersAndLengths()
    {
        var data = new float[4];
        var pin = GCHandle.Alloc(data, GCHandleType.Pinned);
        try
        {
            var p = pin.AddrOfPinnedObject();
            Assert.Equal("pointer", Assert.Throws<ArgumentException>(() => DeviceTensor.WrapExternal<float>(Devices.CpuSmall, IntPtr.Zero, [4])).ParamName);
            Assert.Equal("pointer", Assert.Throws<ArgumentException>(() => DeviceTensor.WrapExternal<float>(Devices.CpuSmall, p + 2, [1])).ParamName);
            Assert.Equal("lengths", Assert.Throws<ArgumentException>(() => DeviceTensor.WrapExternal<float>(Devices.CpuSmall, p, [0])).ParamName);
            Assert.Equal("lengths", Assert.Throws<ArgumentException>(() => DeviceTensor.WrapExternal<float>(Devices.CpuSmall, p, ReadOnlySpan<nint>.Empty)).ParamName);
        }
        finally { pin.Free(); }
    }
}
