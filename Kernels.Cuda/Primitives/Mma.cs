using ILGPU;
using ILGPU.Runtime.Cuda;

namespace Kernels.Cuda.Primitives;

/// <summary>
/// Warp-wide <c>mma.sync.aligned.m16n8k16.row.col.f32.{f16,bf16}.{f16,bf16}.f32</c>: D = A·B + C with A 16×16
/// (row-major fragments), B 16×8 (column-major fragments), f32 accumulation. All 32 lanes of the warp must call it
/// together (convergently). Operand layouts follow the PTX ISA "Matrix Fragments for mma.m16n8k16" exactly, with
/// <c>g = lane / 4</c>, <c>t = lane % 4</c> and two 16-bit values per <c>uint</c> (lower k in the low half):
/// <list type="bullet">
/// <item><c>a0</c> = A[g][2t..2t+1], <c>a1</c> = A[g+8][2t..2t+1], <c>a2</c> = A[g][2t+8..2t+9], <c>a3</c> = A[g+8][2t+8..2t+9];</item>
/// <item><c>b0</c> = B[2t..2t+1][g], <c>b1</c> = B[2t+8..2t+9][g];</item>
/// <item>C and D: see <see cref="MmaFragment"/>.</item>
/// </list>
/// On a CPU accelerator (when <see cref="CudaAsm.IsSupported"/> is false) the same layout is computed in C# with
/// warp shuffles, so kernels built on it run unchanged on ILGPU's CPU device with a 32-lane warp.
/// </summary>
public static class Mma
{
    /// <summary>fp16 inputs, f32 accumulate.</summary>
    public static MmaFragment F16(MmaFragment c, uint a0, uint a1, uint a2, uint a3, uint b0, uint b1)
    {
        if (CudaAsm.IsSupported)
        {
            Output<float> d0 = default, d1 = default, d2 = default, d3 = default;
            Input<uint> ia0 = a0, ia1 = a1, ia2 = a2, ia3 = a3, ib0 = b0, ib1 = b1;
            Input<float> ic0 = c.C0, ic1 = c.C1, ic2 = c.C2, ic3 = c.C3;
            CudaAsm.EmitRef(
                "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%11,%12,%13};",
                ref d0, ref d1, ref d2, ref d3, ref ia0, ref ia1, ref ia2, ref ia3, ref ib0, ref ib1,
                ref ic0, ref ic1, ref ic2, ref ic3);
            return new MmaFragment(d0.Value, d1.Value, d2.Value, d3.Value);
        }
        return Emulate(c, a0, a1, a2, a3, b0, b1, false);
    }

    /// <summary>bf16 inputs, f32 accumulate.</summary>
    public static MmaFragment BF16(MmaFragment c, uint a0, uint a1, uint a2, uint a3, uint b0, uint b1)
    {
        if (CudaAsm.IsSupported)
        {
            Output<float> d0 = default, d1 = default, d2 = default, d3 = default;
            Input<uint> ia0 = a0, ia1 = a1, ia2 = a2, ia3 = a3, ib0 = b0, ib1 = b1;
            Input<float> ic0 = c.C0, ic1 = c.C1, ic2 = c.C2, ic3 = c.C3;
            CudaAsm.EmitRef(
                "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%11,%12,%13};",
                ref d0, ref d1, ref d2, ref d3, ref ia0, ref ia1, ref ia2, ref ia3, ref ib0, ref ib1,
                ref ic0, ref ic1, ref ic2, ref ic3);
            return new MmaFragment(d0.Value, d1.Value, d2.Value, d3.Value);
        }
        return Emulate(c, a0, a1, a2, a3, b0, b1, true);
    }

    /// <summary>fp16 inputs, f32 accumulate; on the CPU accelerator exchanges operands through <paramref name="scratch"/>.</summary>
    public static MmaFragment F16(MmaFragment c, uint a0, uint a1, uint a2, uint a3, uint b0, uint b1, WarpScratch scratch) =>
        CudaAsm.IsSupported ? F16(c, a0, a1, a2, a3, b0, b1) : Emulate(c, a0, a1, a2, a3, b0, b1, false, scratch);

    /// <summary>bf16 inputs, f32 accumulate; on the CPU accelerator exchanges operands through <paramref name="scratch"/>.</summary>
    public static MmaFragment BF16(MmaFragment c, uint a0, uint a1, uint a2, uint a3, uint b0, uint b1, WarpScratch scratch) =>
        CudaAsm.IsSupported ? BF16(c, a0, a1, a2, a3, b0, b1) : Emulate(c, a0, a1, a2, a3, b0, b1, true, scratch);

    /// <summary>Widens the low 16 bits of a packed pair (f16 or bf16) to f32.</summary>
    public static float Low(uint pair, bool bf16) => Widen((ushort)(pair & 0xFFFFu), bf16);

    /// <summary>Widens the high 16 bits of a packed pair (f16 or bf16) to f32.</summary>
    public static float High(uint pair, bool bf16) => Widen((ushort)(pair >> 16), bf16);

    /// <summary>Widens one 16-bit pattern (f16 or bf16) to f32 exactly.</summary>
    public static float Widen(ushort bits, bool bf16) =>
        bf16 ? Interop.IntAsFloat((uint)bits << 16) : (float)Interop.IntAsFloat(bits);

    // Lane (g, t) needs row g (and g+8) of A, held in a0..a3 of lanes 4g..4g+3, and columns 2t, 2t+1 of B, held in
    // b0/b1 of lanes 4·2t+j and 4·(2t+1)+j. Every lane takes part in every shuffle (the CPU warp requires it).
    private static MmaFragment Emulate(MmaFragment c, uint a0, uint a1, uint a2, uint a3, uint b0, uint b1, bool bf16)
    {
        int lane = Warp.LaneIdx;
        int g = lane >> 2, t = lane & 3;
        float d0 = c.C0, d1 = c.C1, d2 = c.C2, d3 = c.C3;
        for (int j = 0; j < 4; j++)
        {
            int srcA = 4 * g + j, srcB0 = 8 * t + j, srcB1 = 8 * t + 4 + j;
            uint ra0 = Warp.Shuffle(a0, srcA), ra1 = Warp.Shuffle(a1, srcA);
            uint ra2 = Warp.Shuffle(a2, srcA), ra3 = Warp.Shuffle(a3, srcA);
            uint rb00 = Warp.Shuffle(b0, srcB0), rb01 = Warp.Shuffle(b1, srcB0);
            uint rb10 = Warp.Shuffle(b0, srcB1), rb11 = Warp.Shuffle(b1, srcB1);
            d0 += Dot2(ra0, rb00, bf16) + Dot2(ra2, rb01, bf16);
            d1 += Dot2(ra0, rb10, bf16) + Dot2(ra2, rb11, bf16);
            d2 += Dot2(ra1, rb00, bf16) + Dot2(ra3, rb01, bf16);
            d3 += Dot2(ra1, rb10, bf16) + Dot2(ra3, rb11, bf16);
        }
        return new MmaFragment(d0, d1, d2, d3);
    }

    private static MmaFragment Emulate(MmaFragment c, uint a0, uint a1, uint a2, uint a3, uint b0, uint b1, bool bf16,
        WarpScratch scratch)
    {
        var s = scratch.Shared;
        int lane = Warp.LaneIdx;
        int w = scratch.WarpBase;
        int mine = w + lane * 8;
        s[mine] = a0; s[mine + 1] = a1; s[mine + 2] = a2; s[mine + 3] = a3; s[mine + 4] = b0; s[mine + 5] = b1;
        Warp.Barrier();
        int g = lane >> 2, t = lane & 3;
        float d0 = c.C0, d1 = c.C1, d2 = c.C2, d3 = c.C3;
        for (int j = 0; j < 4; j++)
        {
            int pa = w + (4 * g + j) * 8, pb0 = w + (8 * t + j) * 8, pb1 = w + (8 * t + 4 + j) * 8;
            uint ra0 = s[pa], ra1 = s[pa + 1], ra2 = s[pa + 2], ra3 = s[pa + 3];
            uint rb00 = s[pb0 + 4], rb01 = s[pb0 + 5], rb10 = s[pb1 + 4], rb11 = s[pb1 + 5];
            d0 += Dot2(ra0, rb00, bf16) + Dot2(ra2, rb01, bf16);
            d1 += Dot2(ra0, rb10, bf16) + Dot2(ra2, rb11, bf16);
            d2 += Dot2(ra1, rb00, bf16) + Dot2(ra3, rb01, bf16);
            d3 += Dot2(ra1, rb10, bf16) + Dot2(ra3, rb11, bf16);
        }
        Warp.Barrier();
        return new MmaFragment(d0, d1, d2, d3);
    }

    private static float Dot2(uint x, uint y, bool bf16) =>
        Low(x, bf16) * Low(y, bf16) + High(x, bf16) * High(y, bf16);
}
