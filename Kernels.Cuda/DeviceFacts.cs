using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace Kernels.Cuda;

/// <summary>The facts about an accelerator that kernels size themselves by and that the tour prints.</summary>
/// <param name="Name">Device name as the driver reports it.</param>
/// <param name="IsCuda">True for a CUDA GPU, false for ILGPU's CPU accelerator.</param>
/// <param name="MultiprocessorCount">Streaming multiprocessors (CPU accelerator: its simulated multiprocessors).</param>
/// <param name="WarpSize">Threads per warp.</param>
/// <param name="L2CacheBytes">L2 cache size in bytes (0 when unknown).</param>
/// <param name="SharedMemoryPerGroup">Shared memory a group gets without opting in (48 KB on NVIDIA GPUs).</param>
/// <param name="SharedMemoryPerGroupOptin">Shared memory a group may get after <c>cuFuncSetAttribute</c>.</param>
/// <param name="ComputeCapability">CUDA compute capability as "major.minor", or empty on the CPU.</param>
/// <param name="MemoryBytes">Device memory in bytes.</param>
public sealed record DeviceFacts(
    string Name,
    bool IsCuda,
    int MultiprocessorCount,
    int WarpSize,
    long L2CacheBytes,
    int SharedMemoryPerGroup,
    int SharedMemoryPerGroupOptin,
    string ComputeCapability,
    long MemoryBytes)
{
    /// <summary>Reads the facts of an ILGPU accelerator; the opt-in shared-memory limit comes from the driver.</summary>
    public static DeviceFacts Of(Accelerator accelerator)
    {
        ArgumentNullException.ThrowIfNull(accelerator);
        if (accelerator is CudaAccelerator cuda)
        {
            int optin = cuda.MaxSharedMemoryPerGroup;
            if (CudaDriver.IsAvailable)
            {
                try { optin = CudaDriver.GetDeviceAttribute(CudaDriver.AttributeMaxSharedMemoryPerBlockOptin, cuda.DeviceId); }
                catch (InvalidOperationException) { /* keep the non-opt-in value */ }
            }
            return new DeviceFacts(cuda.Name, true, cuda.NumMultiprocessors, cuda.WarpSize, cuda.L2CacheSize,
                cuda.MaxSharedMemoryPerGroup, optin, $"{cuda.Architecture.Major}.{cuda.Architecture.Minor}", cuda.MemorySize);
        }
        return new DeviceFacts(accelerator.Name, false, accelerator.NumMultiprocessors, accelerator.WarpSize, 0,
            accelerator.MaxSharedMemoryPerGroup, accelerator.MaxSharedMemoryPerGroup, "", accelerator.MemorySize);
    }
}
