using ILGPU;
using ILGPU.Runtime.Cuda;

namespace Kernels.Cuda.Primitives;

/// <summary>
/// <c>ld.global.nc.v4.u32</c>: a 16-byte load through the read-only (non-coherent) data path, for weights that no
/// kernel writes while it runs. Global addresses cannot be formed from an ILGPU view inside a kernel, so the caller
/// passes the device address of element 0 (<c>view.LoadEffectiveAddressAsPtr()</c> on the host) beside the view; the
/// CPU accelerator reads the view instead.
/// </summary>
public static class GlobalLoad
{
    /// <summary>
    /// Loads words <paramref name="wordIndex"/>..+3 of <paramref name="global"/>, whose element 0 lives at device
    /// address <paramref name="baseAddress"/>. The address must be 16-byte aligned (word index a multiple of 4 and a
    /// 16-byte aligned base).
    /// </summary>
    public static UInt4 NonCoherent4(ArrayView<uint> global, long wordIndex, ulong baseAddress)
    {
        if (CudaAsm.IsSupported)
        {
            Output<uint> x = default, y = default, z = default, w = default;
            Input<ulong> address = baseAddress + (ulong)wordIndex * 4UL;
            CudaAsm.EmitRef("ld.global.nc.v4.u32 {%0,%1,%2,%3}, [%4];", ref x, ref y, ref z, ref w, ref address);
            return new UInt4(x.Value, y.Value, z.Value, w.Value);
        }
        return new UInt4(global[wordIndex], global[wordIndex + 1], global[wordIndex + 2], global[wordIndex + 3]);
    }
}
