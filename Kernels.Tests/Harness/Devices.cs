using Kernels.Runtime;

namespace Kernels.Tests.Harness;

/// <summary>
/// The shared devices of the test run: one ILGPU context for the process (<see cref="ComputeDevice.Context"/>), a
/// small-warp CPU device for ordinary kernels, a 32-lane CPU device for warp-level code, and CUDA when present.
/// </summary>
public static class Devices
{
    /// <summary>Small-warp CPU accelerator (4 lanes × 4 warps): fast for element-wise kernels.</summary>
    public static ComputeDevice CpuSmall => ComputeDevice.CpuSmall;

    /// <summary>32-lane CPU accelerator: warp-level and tensor-core kernels.</summary>
    public static ComputeDevice CpuWarp32 => ComputeDevice.CpuWarp32;

    /// <summary>The CUDA device, or null when none is visible (GPU tests then skip).</summary>
    public static ComputeDevice? Cuda => ComputeDevice.CudaAvailable ? ComputeDevice.Get(DeviceKind.Cuda) : null;

    /// <summary>Returns the CUDA device or skips the calling test.</summary>
    public static ComputeDevice RequireCuda() =>
        Cuda ?? throw Xunit.Sdk.SkipException.ForSkip("no CUDA device visible (GPU test)");
}
