using ILGPU.Runtime.Cuda;

namespace Kernels.Cuda.Primitives;

/// <summary>
/// The 32-bit shared-state-space address of the group's dynamic shared memory, which <c>ldmatrix</c> and
/// <c>cp.async</c> take. The primitives of this namespace address shared memory as
/// (<c>ArrayView&lt;uint&gt;</c> of the whole dynamic shared memory, byte offset): on a GPU the offset is added to
/// this base, on the CPU accelerator it indexes the view.
/// </summary>
public static class SharedAddress
{
    /// <summary>
    /// Base address of ILGPU's dynamic shared memory (<c>__dyn_shared_alloca</c>). The kernel must obtain the memory
    /// with <c>SharedMemory.GetDynamic&lt;T&gt;()</c>, otherwise the symbol does not exist. 0 on the CPU.
    /// </summary>
    public static uint DynamicBase()
    {
        if (CudaAsm.IsSupported)
        {
            CudaAsm.Emit("mov.u32 %0, __dyn_shared_alloca;", out uint address);
            return address;
        }
        return 0;
    }
}
