using ILGPU;
using ILGPU.Runtime.Cuda;

namespace Kernels.Cuda.Primitives;

/// <summary>
/// Warp-wide <c>ldmatrix.sync.aligned.m8n8.{x1,x2,x4}[.trans].shared.b16</c>: loads one, two or four 8×8 matrices of
/// 16-bit elements from shared memory into registers in the mma fragment layout. Lanes 8i..8i+7 give the byte offsets
/// of rows 0..7 of matrix i (each row 16 contiguous, 16-byte aligned bytes); lane l receives, in register i, row
/// <c>l / 4</c>, elements <c>2(l % 4)</c> and <c>2(l % 4)+1</c> of matrix i (low half = lower element), or with
/// <c>.trans</c> elements (<c>2(l % 4)</c>, <c>l / 4</c>) and (<c>2(l % 4)+1</c>, <c>l / 4</c>) — the transposed matrix.
/// All 32 lanes must call it together. <c>shared</c> is the whole dynamic shared memory
/// (<c>SharedMemory.GetDynamic&lt;uint&gt;()</c>) and offsets are in bytes from its start (see <see cref="SharedAddress"/>).
/// </summary>
public static class LdMatrix
{
    /// <summary>One 8×8 matrix; lanes 0..7 give the row offsets.</summary>
    public static uint X1(ArrayView<uint> shared, int byteOffset)
    {
        if (CudaAsm.IsSupported)
        {
            CudaAsm.Emit("ldmatrix.sync.aligned.m8n8.x1.shared.b16 {%0}, [%1];", out uint r0,
                SharedAddress.DynamicBase() + (uint)byteOffset);
            return r0;
        }
        return Row(shared, byteOffset, 0);
    }

    /// <summary>Two 8×8 matrices; lanes 0..15 give the row offsets.</summary>
    public static void X2(ArrayView<uint> shared, int byteOffset, out uint r0, out uint r1)
    {
        if (CudaAsm.IsSupported)
        {
            Output<uint> o0 = default, o1 = default;
            Input<uint> address = SharedAddress.DynamicBase() + (uint)byteOffset;
            CudaAsm.EmitRef("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];", ref o0, ref o1, ref address);
            r0 = o0.Value; r1 = o1.Value;
            return;
        }
        r0 = Row(shared, byteOffset, 0);
        r1 = Row(shared, byteOffset, 1);
    }

    /// <summary>Four 8×8 matrices; lanes 0..31 give the row offsets.</summary>
    public static void X4(ArrayView<uint> shared, int byteOffset, out uint r0, out uint r1, out uint r2, out uint r3)
    {
        if (CudaAsm.IsSupported)
        {
            X4(shared, SharedAddress.DynamicBase(), byteOffset, out r0, out r1, out r2, out r3, default);
            return;
        }
        r0 = Row(shared, byteOffset, 0);
        r1 = Row(shared, byteOffset, 1);
        r2 = Row(shared, byteOffset, 2);
        r3 = Row(shared, byteOffset, 3);
    }

    /// <summary>One transposed 8×8 matrix; lanes 0..7 give the row offsets.</summary>
    public static uint X1Trans(ArrayView<uint> shared, int byteOffset)
    {
        if (CudaAsm.IsSupported)
        {
            CudaAsm.Emit("ldmatrix.sync.aligned.m8n8.x1.trans.shared.b16 {%0}, [%1];", out uint r0,
                SharedAddress.DynamicBase() + (uint)byteOffset);
            return r0;
        }
        return Column(shared, byteOffset, 0);
    }

    /// <summary>Two transposed 8×8 matrices; lanes 0..15 give the row offsets.</summary>
    public static void X2Trans(ArrayView<uint> shared, int byteOffset, out uint r0, out uint r1)
    {
        if (CudaAsm.IsSupported)
        {
            Output<uint> o0 = default, o1 = default;
            Input<uint> address = SharedAddress.DynamicBase() + (uint)byteOffset;
            CudaAsm.EmitRef("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];", ref o0, ref o1, ref address);
            r0 = o0.Value; r1 = o1.Value;
            return;
        }
        r0 = Column(shared, byteOffset, 0);
        r1 = Column(shared, byteOffset, 1);
    }

    /// <summary>Four transposed 8×8 matrices; lanes 0..31 give the row offsets.</summary>
    public static void X4Trans(ArrayView<uint> shared, int byteOffset, out uint r0, out uint r1, out uint r2, out uint r3)
    {
        if (CudaAsm.IsSupported)
        {
            Output<uint> o0 = default, o1 = default, o2 = default, o3 = default;
            Input<uint> address = SharedAddress.DynamicBase() + (uint)byteOffset;
            CudaAsm.EmitRef("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];",
                ref o0, ref o1, ref o2, ref o3, ref address);
            r0 = o0.Value; r1 = o1.Value; r2 = o2.Value; r3 = o3.Value;
            return;
        }
        r0 = Column(shared, byteOffset, 0);
        r1 = Column(shared, byteOffset, 1);
        r2 = Column(shared, byteOffset, 2);
        r3 = Column(shared, byteOffset, 3);
    }

    /// <summary>Four 8×8 matrices (see <see cref="X4(ArrayView{uint}, int, out uint, out uint, out uint, out uint)"/>); the CPU path exchanges row offsets through <paramref name="scratch"/>.</summary>
    public static void X4(ArrayView<uint> shared, int byteOffset, out uint r0, out uint r1, out uint r2, out uint r3, WarpScratch scratch) =>
        X4(shared, SharedAddress.DynamicBase(), byteOffset, out r0, out r1, out r2, out r3, scratch);

    /// <summary>
    /// Four 8×8 matrices at <paramref name="byteOffset"/> from <paramref name="sharedBase"/> =
    /// <see cref="SharedAddress.DynamicBase"/>, read once by the caller: each read of the symbol costs ptxas 2–3
    /// uniform instructions on sm_90, so a loop of many <c>ldmatrix</c> passes the base in. The CPU path exchanges row
    /// offsets through <paramref name="scratch"/> (the base is 0 there).
    /// </summary>
    public static void X4(ArrayView<uint> shared, uint sharedBase, int byteOffset, out uint r0, out uint r1, out uint r2, out uint r3, WarpScratch scratch)
    {
        if (CudaAsm.IsSupported)
        {
            Output<uint> o0 = default, o1 = default, o2 = default, o3 = default;
            Input<uint> address = sharedBase + (uint)byteOffset;
            CudaAsm.EmitRef("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];",
                ref o0, ref o1, ref o2, ref o3, ref address);
            r0 = o0.Value; r1 = o1.Value; r2 = o2.Value; r3 = o3.Value;
            return;
        }
        int w = Publish(scratch, byteOffset);
        r0 = RowFrom(shared, scratch, w, 0);
        r1 = RowFrom(shared, scratch, w, 1);
        r2 = RowFrom(shared, scratch, w, 2);
        r3 = RowFrom(shared, scratch, w, 3);
        Warp.Barrier();
    }

    /// <summary>Four transposed 8×8 matrices (see <see cref="X4Trans(ArrayView{uint}, int, out uint, out uint, out uint, out uint)"/>); the CPU path exchanges row offsets through <paramref name="scratch"/>.</summary>
    public static void X4Trans(ArrayView<uint> shared, int byteOffset, out uint r0, out uint r1, out uint r2, out uint r3, WarpScratch scratch)
    {
        if (CudaAsm.IsSupported)
        {
            X4Trans(shared, byteOffset, out r0, out r1, out r2, out r3);
            return;
        }
        int w = Publish(scratch, byteOffset);
        r0 = ColumnFrom(shared, scratch, w, 0);
        r1 = ColumnFrom(shared, scratch, w, 1);
        r2 = ColumnFrom(shared, scratch, w, 2);
        r3 = ColumnFrom(shared, scratch, w, 3);
        Warp.Barrier();
    }

    private static int Publish(WarpScratch scratch, int byteOffset)
    {
        int w = scratch.WarpBase;
        scratch.Shared[w + Warp.LaneIdx] = (uint)byteOffset;
        Warp.Barrier();
        return w;
    }

    private static uint RowFrom(ArrayView<uint> shared, WarpScratch scratch, int w, int matrix)
    {
        int lane = Warp.LaneIdx;
        int rowOffset = (int)scratch.Shared[w + 8 * matrix + (lane >> 2)];
        return shared[(rowOffset >> 2) + (lane & 3)];
    }

    private static uint ColumnFrom(ArrayView<uint> shared, WarpScratch scratch, int w, int matrix)
    {
        int lane = Warp.LaneIdx;
        int t = lane & 3, g = lane >> 2;
        int rowA = (int)scratch.Shared[w + 8 * matrix + 2 * t];
        int rowB = (int)scratch.Shared[w + 8 * matrix + 2 * t + 1];
        return HalfAt(shared, rowA + 2 * g) | (HalfAt(shared, rowB + 2 * g) << 16);
    }

    // CPU path: fetch the row address from the lane that supplies it, then read shared memory directly.
    private static uint Row(ArrayView<uint> shared, int byteOffset, int matrix)
    {
        int lane = Warp.LaneIdx;
        int rowOffset = Warp.Shuffle(byteOffset, 8 * matrix + (lane >> 2));
        return shared[(rowOffset >> 2) + (lane & 3)];
    }

    private static uint Column(ArrayView<uint> shared, int byteOffset, int matrix)
    {
        int lane = Warp.LaneIdx;
        int t = lane & 3, g = lane >> 2;
        int rowA = Warp.Shuffle(byteOffset, 8 * matrix + 2 * t);
        int rowB = Warp.Shuffle(byteOffset, 8 * matrix + 2 * t + 1);
        return HalfAt(shared, rowA + 2 * g) | (HalfAt(shared, rowB + 2 * g) << 16);
    }

    private static uint HalfAt(ArrayView<uint> shared, int byteOffset)
    {
        uint word = shared[byteOffset >> 2];
        return (byteOffset & 2) == 0 ? word & 0xFFFFu : word >> 16;
    }
}
