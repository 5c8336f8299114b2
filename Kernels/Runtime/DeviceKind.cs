namespace Kernels.Runtime;

/// <summary>Which accelerator a <see cref="ComputeDevice"/> runs on.</summary>
public enum DeviceKind
{
    /// <summary>CUDA when a CUDA device is present, else the CPU accelerator.</summary>
    Auto,
    /// <summary>The first CUDA device; an error when there is none.</summary>
    Cuda,
    /// <summary>ILGPU's CPU accelerator with a 32-lane warp, so tensor-core kernels run (slowly) too.</summary>
    Cpu,
}
