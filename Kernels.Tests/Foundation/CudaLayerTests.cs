using Kernels.Cuda;
using Kernels.Runtime;
using Kernels.Tests.Harness;
using Xunit;

namespace Kernels.Tests.Foundation;

public class CudaLayerTests
{
    [Fact]
    public void ResolverInstallsOnceAndIsIdempotent()
    {
        _ = ComputeDevice.Context; // the context installs the resolver before ILGPU binds libcuda
        Assert.True(CudaLibraryResolver.Install());
        Assert.True(CudaLibraryResolver.Install());
        if (!OperatingSystem.IsWindows()) Assert.Equal(["libcuda.so.1", "libcuda.so"], CudaLibraryResolver.DriverCandidates);
    }

    [Fact]
    public void DriverAvailabilityAgreesWithIlgpu()
    {
        // Where ILGPU sees a CUDA device the driver table must bind too, and without a driver nothing is claimed.
        if (ComputeDevice.CudaAvailable) Assert.True(CudaDriver.IsAvailable);
        if (!CudaLibraryResolver.TryLoadDriver(out _))
        {
            Assert.False(CudaDriver.IsAvailable);
            Assert.False(ComputeDevice.CudaAvailable);
            Assert.Throws<InvalidOperationException>(() => CudaDriver.GetDeviceAttribute(CudaDriver.AttributeMultiprocessorCount, 0));
        }
    }

    [Fact]
    public void FactsOfTheCpuDevice()
    {
        var f = Devices.CpuWarp32.Facts;
        Assert.False(f.IsCuda);
        Assert.Equal(32, f.WarpSize);
        Assert.Equal(1, f.MultiprocessorCount);
        Assert.True(f.SharedMemoryPerGroup > 0);
        Assert.Equal(f.SharedMemoryPerGroup, f.SharedMemoryPerGroupOptin);
    }

    [Fact]
    public void CudaFactsOnAGpu()
    {
        var cuda = Devices.RequireCuda();
        var f = cuda.Facts;
        Assert.True(f.IsCuda);
        Assert.Equal(CudaDriver.GetDeviceAttribute(CudaDriver.AttributeMultiprocessorCount, 0), f.MultiprocessorCount);
        Assert.True(f.SharedMemoryPerGroupOptin >= f.SharedMemoryPerGroup);
        Assert.True(f.L2CacheBytes > 0);
    }

    [Fact]
    public void StreamTimerMeasuresEnqueuedWork()
    {
        var device = Devices.CpuSmall;
        using var a = device.Allocate<float>(1 << 16);
        double ms = StreamTimer.MeasureMilliseconds(device.Stream, () => a.Span.Clear(), 3);
        Assert.True(ms >= 0 && double.IsFinite(ms));
        Assert.Throws<ArgumentOutOfRangeException>(() => StreamTimer.MeasureMilliseconds(device.Stream, () => { }, 0));
    }
}
