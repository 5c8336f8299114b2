using ILGPU;
using ILGPU.Runtime;
using Kernels.Cuda.Primitives;
using Kernels.Runtime;

namespace Kernels.Tests.Cuda;

/// <summary>One-warp test kernels that drive each primitive from data laid out by the PTX ISA's fragment rules.</summary>
internal static class PrimitiveKernels
{
    /// <summary>
    /// D = A·B + C for one m16n8k16: a is 16×16 row-major, bt is B transposed (8×16, bt[n·16 + k] = B[k][n]),
    /// c and d are 16×8 row-major. Each lane packs its operands exactly as the ISA's fragment tables say.
    /// </summary>
    public static void Mma(ArrayView<ushort> a, ArrayView<ushort> bt, ArrayView<float> c, ArrayView<float> d, int bf16, int useScratch)
    {
        var shared = SharedMemory.GetDynamic<uint>();
        int lane = Warp.LaneIdx;
        int g = lane >> 2, t = lane & 3;
        uint a0 = Pack(a[g * 16 + 2 * t], a[g * 16 + 2 * t + 1]);
        uint a1 = Pack(a[(g + 8) * 16 + 2 * t], a[(g + 8) * 16 + 2 * t + 1]);
        uint a2 = Pack(a[g * 16 + 2 * t + 8], a[g * 16 + 2 * t + 9]);
        uint a3 = Pack(a[(g + 8) * 16 + 2 * t + 8], a[(g + 8) * 16 + 2 * t + 9]);
        uint b0 = Pack(bt[g * 16 + 2 * t], bt[g * 16 + 2 * t + 1]);
        uint b1 = Pack(bt[g * 16 + 2 * t + 8], bt[g * 16 + 2 * t + 9]);
        var cf = new MmaFragment(c[g * 8 + 2 * t], c[g * 8 + 2 * t + 1], c[(g + 8) * 8 + 2 * t], c[(g + 8) * 8 + 2 * t + 1]);
        MmaFragment r;
        if (useScratch != 0)
        {
            var scratch = new WarpScratch(shared);
            r = bf16 != 0 ? Kernels.Cuda.Primitives.Mma.BF16(cf, a0, a1, a2, a3, b0, b1, scratch)
                          : Kernels.Cuda.Primitives.Mma.F16(cf, a0, a1, a2, a3, b0, b1, scratch);
        }
        else
        {
            r = bf16 != 0 ? Kernels.Cuda.Primitives.Mma.BF16(cf, a0, a1, a2, a3, b0, b1)
                          : Kernels.Cuda.Primitives.Mma.F16(cf, a0, a1, a2, a3, b0, b1);
        }
        d[g * 8 + 2 * t] = r.C0;
        d[g * 8 + 2 * t + 1] = r.C1;
        d[(g + 8) * 8 + 2 * t] = r.C2;
        d[(g + 8) * 8 + 2 * t + 1] = r.C3;
    }

    /// <summary>
    /// Copies <paramref name="image"/> into shared memory, then lane l calls ldmatrix with row offset rows[l] and
    /// writes register i to output[i·32 + l]. variant: 1, 2, 4 matrices; trans adds .trans; useScratch picks the overload.
    /// </summary>
    public static void LdMatrix(ArrayView<uint> image, ArrayView<int> rows, ArrayView<uint> output, int variant, int trans, int useScratch)
    {
        var shared = SharedMemory.GetDynamic<uint>();
        int lane = Warp.LaneIdx;
        for (int i = lane; i < image.Length; i += 32) shared[i] = image[i];
        Warp.Barrier();
        int offset = rows[lane];
        uint r0 = 0, r1 = 0, r2 = 0, r3 = 0;
        if (useScratch != 0)
        {
            var scratch = new WarpScratch(shared);
            if (trans != 0) Kernels.Cuda.Primitives.LdMatrix.X4Trans(shared, offset, out r0, out r1, out r2, out r3, scratch);
            else Kernels.Cuda.Primitives.LdMatrix.X4(shared, offset, out r0, out r1, out r2, out r3, scratch);
        }
        else if (variant == 1)
        {
            r0 = trans != 0 ? Kernels.Cuda.Primitives.LdMatrix.X1Trans(shared, offset) : Kernels.Cuda.Primitives.LdMatrix.X1(shared, offset);
        }
        else if (variant == 2)
        {
            if (trans != 0) Kernels.Cuda.Primitives.LdMatrix.X2Trans(shared, offset, out r0, out r1);
            else Kernels.Cuda.Primitives.LdMatrix.X2(shared, offset, out r0, out r1);
        }
        else
        {
            if (trans != 0) Kernels.Cuda.Primitives.LdMatrix.X4Trans(shared, offset, out r0, out r1, out r2, out r3);
            else Kernels.Cuda.Primitives.LdMatrix.X4(shared, offset, out r0, out r1, out r2, out r3);
        }
        output[lane] = r0;
        output[32 + lane] = r1;
        output[64 + lane] = r2;
        output[96 + lane] = r3;
    }

    /// <summary>
    /// Lane l copies 16 bytes from source words [4·l, 4·l+4) (valid bytes = valid[l]) to shared chunk l with cp.async,
    /// commits, waits, and after a barrier the warp writes shared memory back to output. Also loads the same chunk with
    /// ld.global.nc.v4 into loaded[4·l..].
    /// </summary>
    public static void Copy(ArrayView<uint> source, ulong sourceAddress, ArrayView<int> valid, ArrayView<uint> output, ArrayView<uint> loaded)
    {
        var shared = SharedMemory.GetDynamic<uint>();
        int lane = Warp.LaneIdx;
        CpAsync.Copy16(shared, lane * 16, source, 4L * lane, sourceAddress, valid[lane]);
        CpAsync.CommitGroup();
        CpAsync.WaitAll();
        Group.Barrier();
        for (int i = 0; i < 4; i++) output[4 * lane + i] = shared[4 * lane + i];
        var v = GlobalLoad.NonCoherent4(source, 4L * lane, sourceAddress);
        loaded[4 * lane] = v.X;
        loaded[4 * lane + 1] = v.Y;
        loaded[4 * lane + 2] = v.Z;
        loaded[4 * lane + 3] = v.W;
    }

    private static uint Pack(ushort lo, ushort hi) => lo | ((uint)hi << 16);

    public static KernelConfig OneWarp(int sharedWords) => new(1, 32, SharedMemoryConfig.RequestDynamic<uint>(sharedWords));

    public static Action<AcceleratorStream, KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, int, int> MmaKernel(ComputeDevice d) =>
        d.GetKernel(typeof(PrimitiveKernels).GetMethod(nameof(Mma))!, acc =>
            acc.LoadKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, int, int>(Mma));

    public static Action<AcceleratorStream, KernelConfig, ArrayView<uint>, ArrayView<int>, ArrayView<uint>, int, int, int> LdMatrixKernel(ComputeDevice d) =>
        d.GetKernel(typeof(PrimitiveKernels).GetMethod(nameof(LdMatrix))!, acc =>
            acc.LoadKernel<ArrayView<uint>, ArrayView<int>, ArrayView<uint>, int, int, int>(LdMatrix));

    public static Action<AcceleratorStream, KernelConfig, ArrayView<uint>, ulong, ArrayView<int>, ArrayView<uint>, ArrayView<uint>> CopyKernel(ComputeDevice d) =>
        d.GetKernel(typeof(PrimitiveKernels).GetMethod(nameof(Copy))!, acc =>
            acc.LoadKernel<ArrayView<uint>, ulong, ArrayView<int>, ArrayView<uint>, ArrayView<uint>>(Copy));
}
