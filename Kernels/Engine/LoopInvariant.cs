using ILGPU.Runtime.Cuda;

namespace Kernels.Engine;

/// <summary>
/// Keeps a value computed before a loop out of the loop. ILGPU 1.5.3 places pure arithmetic next to its uses, so a
/// lane's <c>ldmatrix</c> offsets computed once before the mainloop are recomputed inside it on every trip (seen in the
/// PTX: <c>lane &amp; 15</c>, shifts and XORs before each <c>ldmatrix</c>). A value that comes out of an inline-PTX
/// <c>mov</c> is defined where the <c>mov</c> stands; ptxas then keeps it in a register.
/// </summary>
public static class LoopInvariant
{
    /// <summary><paramref name="value"/>, pinned where this is called (a plain copy on the CPU).</summary>
    public static int Pin(int value)
    {
        if (CudaAsm.IsSupported)
        {
            CudaAsm.Emit("mov.b32 %0, %1;", out int pinned, value);
            return pinned;
        }
        return value;
    }
}
