using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace Kernels.Cuda;

/// <summary>Registers and local (spill/stack) bytes of a compiled CUDA kernel, as the driver reports them.</summary>
/// <param name="Registers">Registers per thread (<c>CU_FUNC_ATTRIBUTE_NUM_REGS</c>).</param>
/// <param name="LocalBytes">Local memory per thread in bytes (<c>CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES</c>).</param>
public sealed record KernelResources(int Registers, int LocalBytes);

/// <summary>
/// Per-kernel driver attributes ILGPU does not expose, for kernels loaded through ILGPU (the delegate a
/// <c>LoadKernel</c> call returns; <c>KernelUtil.GetKernel(delegate)</c> gives its <see cref="Kernel"/>).
/// </summary>
public static class KernelAttributes
{
    /// <summary>
    /// Lets a CUDA kernel use up to <paramref name="bytes"/> of dynamic shared memory (above the 48 KB default) with
    /// <c>cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES)</c>. ILGPU passes the launch's dynamic size straight to
    /// <c>cuLaunchKernel</c>, so its own launcher then works with the larger size. Returns false (and does nothing) on
    /// a non-CUDA kernel; throws when <paramref name="bytes"/> exceeds <paramref name="optinLimit"/>
    /// (<see cref="DeviceFacts.SharedMemoryPerGroupOptin"/>).
    /// </summary>
    public static bool RaiseDynamicSharedMemory(Kernel kernel, int bytes, int optinLimit)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        if (bytes > optinLimit)
            throw new ArgumentOutOfRangeException(nameof(bytes),
                $"{bytes} bytes of dynamic shared memory exceed the device's opt-in limit of {optinLimit}.");
        if (kernel is not CudaKernel cuda) return false;
        cuda.Accelerator.Bind();
        CudaDriver.SetFunctionAttribute(cuda.FunctionPtr, CudaDriver.FuncAttributeMaxDynamicSharedSizeBytes, bytes);
        return true;
    }

    /// <summary>Registers and local bytes per thread of a CUDA kernel; null for other accelerators or without a driver.</summary>
    public static KernelResources? Read(Kernel kernel)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        if (kernel is not CudaKernel cuda || !CudaDriver.IsAvailable) return null;
        cuda.Accelerator.Bind();
        return new KernelResources(
            CudaDriver.GetFunctionAttribute(cuda.FunctionPtr, CudaDriver.FuncAttributeNumRegs),
            CudaDriver.GetFunctionAttribute(cuda.FunctionPtr, CudaDriver.FuncAttributeLocalSizeBytes));
    }
}
