using ILGPU;
using ILGPU.Runtime;
using Kernels.Cuda;
using Kernels.Tests.Harness;
using Xunit;

namespace Kernels.Tests.Cuda;

public class KernelAttributesTests
{
    private static void Touch(ArrayView<int> data)
    {
        var shared = SharedMemory.GetDynamic<int>();
        int i = Group.IdxX;
        shared[i] = data[i];
        Group.Barrier();
        data[i] = shared[Group.DimX - 1 - i] + 1;
    }

    private static Action<AcceleratorStream, KernelConfig, ArrayView<int>> Load(Kernels.Runtime.ComputeDevice device) =>
        device.GetKernel(typeof(KernelAttributesTests).GetMethod(nameof(Touch), System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static)!,
            acc => acc.LoadKernel<ArrayView<int>>(Touch));

    [Fact]
    public void CpuKernelsHaveNoDriverAttributes()
    {
        var kernel = Load(Devices.CpuSmall).GetKernel();
        Assert.False(KernelAttributes.RaiseDynamicSharedMemory(kernel, 1024, 48 * 1024));
        Assert.Null(KernelAttributes.Read(kernel));
        Assert.Throws<ArgumentOutOfRangeException>(() => KernelAttributes.RaiseDynamicSharedMemory(kernel, 100_000, 48 * 1024));
    }

    [Fact]
    public void GpuKernelUsesMoreThan48KiBOfDynamicSharedMemory()
    {
        var gpu = Devices.RequireCuda();
        var kernel = Load(gpu);
        int optin = gpu.Facts.SharedMemoryPerGroupOptin;
        Assert.True(optin > 48 * 1024, $"opt-in limit {optin}");
        Assert.True(KernelAttributes.RaiseDynamicSharedMemory(kernel.GetKernel(), optin, optin));
        var resources = KernelAttributes.Read(kernel.GetKernel());
        Assert.NotNull(resources);
        using var data = gpu.Upload<int>(Enumerable.Range(0, 64).ToArray());
        kernel(gpu.Stream, new KernelConfig(1, 64, SharedMemoryConfig.RequestDynamic<int>(optin / sizeof(int))), data.Span.View);
        Assert.Equal(Enumerable.Range(0, 64).Select(i => 63 - i + 1).ToArray(), data.ToArray());
    }
}
