using ILGPU;
using ILGPU.Runtime.Cuda;

namespace Kernels.Cuda.Primitives;

/// <summary>
/// Asynchronous global→shared copies: <c>cp.async.cg.shared.global</c> of 16 bytes (bypassing L1), grouped with
/// <c>cp.async.commit_group</c> and awaited with <c>cp.async.wait_group</c>. A copy is visible to the issuing thread
/// after the wait and to the other threads of the group after the wait followed by a group barrier. Bytes past
/// <c>validBytes</c> are filled with zeros, which is how tile edges are predicated without branches. On the CPU
/// accelerator the copy happens immediately and commit/wait do nothing; kernels still need the same barriers.
/// </summary>
public static class CpAsync
{
    /// <summary>
    /// Copies 16 bytes from <paramref name="global"/> words <paramref name="wordIndex"/>..+3 (device address of element 0
    /// = <paramref name="baseAddress"/>; the source address must be 16-byte aligned) to the dynamic shared memory at
    /// <paramref name="sharedByteOffset"/> (16-byte aligned). Only the first <paramref name="validBytes"/> bytes
    /// (0, 4, 8, 12 or 16) are read; the rest of the 16 are zero-filled. With 0 valid bytes nothing is read.
    /// </summary>
    public static void Copy16(ArrayView<uint> shared, int sharedByteOffset,
        ArrayView<uint> global, long wordIndex, ulong baseAddress, int validBytes) =>
        Copy16(shared, SharedAddress.DynamicBase(), sharedByteOffset, global, wordIndex, baseAddress, validBytes);

    /// <summary>
    /// <see cref="Copy16(ArrayView{uint}, int, ArrayView{uint}, long, ulong, int)"/> with the destination at
    /// <paramref name="sharedByteOffset"/> from <paramref name="sharedBase"/> = <see cref="SharedAddress.DynamicBase"/>,
    /// read once by the caller (each read of the symbol costs ptxas 2–3 uniform instructions on sm_90).
    /// </summary>
    public static void Copy16(ArrayView<uint> shared, uint sharedBase, int sharedByteOffset,
        ArrayView<uint> global, long wordIndex, ulong baseAddress, int validBytes)
    {
        if (CudaAsm.IsSupported)
        {
            uint destination = sharedBase + (uint)sharedByteOffset;
            ulong source = baseAddress + (validBytes > 0 ? (ulong)wordIndex * 4UL : 0UL);
            CudaAsm.Emit("cp.async.cg.shared.global [%0], [%1], 16, %2;", destination, source, (uint)validBytes);
            return;
        }
        int d = sharedByteOffset >> 2;
        int words = validBytes >> 2;
        shared[d] = words > 0 ? global[wordIndex] : 0u;
        shared[d + 1] = words > 1 ? global[wordIndex + 1] : 0u;
        shared[d + 2] = words > 2 ? global[wordIndex + 2] : 0u;
        shared[d + 3] = words > 3 ? global[wordIndex + 3] : 0u;
    }

    /// <summary><c>cp.async.commit_group</c>: closes the group of copies issued since the last commit.</summary>
    public static void CommitGroup()
    {
        if (CudaAsm.IsSupported) CudaAsm.Emit("cp.async.commit_group;");
    }

    /// <summary><c>cp.async.wait_group 0</c>: waits for every committed group of this thread.</summary>
    public static void WaitAll()
    {
        if (CudaAsm.IsSupported) CudaAsm.Emit("cp.async.wait_group 0;");
    }

    /// <summary>
    /// <c>cp.async.wait_group pending</c>: waits until at most <paramref name="pending"/> (0…3, a compile-time constant
    /// in a kernel; the branches fold) of this thread's most recent committed groups are still in flight.
    /// </summary>
    public static void WaitGroup(int pending)
    {
        if (!CudaAsm.IsSupported) return;
        if (pending <= 0) CudaAsm.Emit("cp.async.wait_group 0;");
        else if (pending == 1) CudaAsm.Emit("cp.async.wait_group 1;");
        else if (pending == 2) CudaAsm.Emit("cp.async.wait_group 2;");
        else CudaAsm.Emit("cp.async.wait_group 3;");
    }

    /// <summary><c>cp.async.wait_group 1</c>: waits for all but the most recent committed group (double buffering).</summary>
    public static void WaitAllButLatest()
    {
        if (CudaAsm.IsSupported) CudaAsm.Emit("cp.async.wait_group 1;");
    }
}
