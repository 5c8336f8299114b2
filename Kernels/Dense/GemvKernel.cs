using ILGPU;
using ILGPU.Runtime;
using Kernels.Cuda.Primitives;
using Kernels.Engine;
using Kernels.Runtime;
using Kernels.Tensors;

namespace Kernels.Dense;

/// <summary>
/// y = W·x for one token: bandwidth-bound, so no tensor cores. One warp per weight row (grid-stride over rows); each
/// lane streams 16-byte chunks of the row with <c>ld.global.nc.v4</c> (each weight byte read once), multiplies with
/// the matching 16-byte chunk of x (<c>ld.global.v4</c>, L1/L2 resident), accumulates in f32, and the warp sums with
/// shuffles. Rows that are not 16-byte aligned (K not a multiple of 8) take 16-bit loads.
/// </summary>
internal static class GemvKernel
{
    public const int GroupSize = 128;

    public static void Launch<T, TConvert, TMma>(Runtime.ComputeDevice device, Matrix16 w, ArrayView<UInt4> x4,
        ArrayView<ushort> x, ArrayView<T> bias, int hasBias, ArrayView<T> y)
        where T : unmanaged
        where TConvert : struct, IElementConverter<T>
        where TMma : struct, IMmaKind
    {
        var kernel = Load<T, TConvert, TMma>(device);
        // One group on the CPU accelerator: its groups run one after another, each paying a thread hand-off.
        int groups = device.IsCuda ? device.GroupsFor((long)w.Rows * 32, GroupSize) : 1;
        kernel(device.Stream, new KernelConfig(groups, GroupSize), w, x4, x, bias, hasBias, y);
    }

    public static Action<AcceleratorStream, KernelConfig, Matrix16, ArrayView<UInt4>, ArrayView<ushort>, ArrayView<T>, int, ArrayView<T>> Load<T, TConvert, TMma>(Runtime.ComputeDevice device)
        where T : unmanaged
        where TConvert : struct, IElementConverter<T>
        where TMma : struct, IMmaKind =>
        device.GetKernel((typeof(GemvKernel), typeof(T)),
            acc => acc.LoadCatalogKernel<Matrix16, ArrayView<UInt4>, ArrayView<ushort>, ArrayView<T>, int, ArrayView<T>>(
                Kernel<T, TConvert, TMma>));

    public static void Kernel<T, TConvert, TMma>(Matrix16 w, ArrayView<UInt4> x4, ArrayView<ushort> x,
        ArrayView<T> bias, int hasBias, ArrayView<T> y)
        where T : unmanaged
        where TConvert : struct, IElementConverter<T>
        where TMma : struct, IMmaKind
    {
        bool bf16 = default(TMma).IsBFloat16;
        int lane = Warp.LaneIdx;
        int warpsPerGroup = Group.DimX / Warp.WarpSize;
        int totalWarps = Grid.DimX * warpsPerGroup;
        int chunks = w.Columns >> 3;
        for (int row = Grid.IdxX * warpsPerGroup + Warp.WarpIdx; row < w.Rows; row += totalWarps)
        {
            float sum = 0f;
            long rowStart = (long)row * w.RowStride;
            if (w.Aligned != 0)
            {
                long rowWord = rowStart >> 1;
                // Two 16-byte weight loads in flight per lane before either is used (no unrolling in ILGPU 1.5.3).
                int c = lane;
                for (; c + 32 < chunks; c += 64)
                {
                    var w0 = GlobalLoad.NonCoherent4(w.Words, rowWord + 4L * c, w.Address);
                    var w1 = GlobalLoad.NonCoherent4(w.Words, rowWord + 4L * (c + 32), w.Address);
                    var x0 = x4[c];
                    var x1 = x4[c + 32];
                    sum += Dot8(w0, x0, bf16) + Dot8(w1, x1, bf16);
                }
                if (c < chunks)
                {
                    var w0 = GlobalLoad.NonCoherent4(w.Words, rowWord + 4L * c, w.Address);
                    sum += Dot8(w0, x4[c], bf16);
                }
            }
            else
            {
                for (int k = lane; k < w.Columns; k += 32)
                    sum += Mma.Widen(w.Halves[rowStart + k], bf16) * Mma.Widen(x[k], bf16);
            }
            sum += Warp.ShuffleXor(sum, 16);
            sum += Warp.ShuffleXor(sum, 8);
            sum += Warp.ShuffleXor(sum, 4);
            sum += Warp.ShuffleXor(sum, 2);
            sum += Warp.ShuffleXor(sum, 1);
            if (lane == 0)
            {
                if (hasBias != 0) sum += default(TConvert).ToFloat(bias[row]);
                y[row] = default(TConvert).FromFloat(sum);
            }
        }
    }

    private static float Dot8(UInt4 a, UInt4 b, bool bf16) =>
        Dot2(a.X, b.X, bf16) + Dot2(a.Y, b.Y, bf16) + Dot2(a.Z, b.Z, bf16) + Dot2(a.W, b.W, bf16);

    private static float Dot2(uint a, uint b, bool bf16) =>
        Mma.Low(a, bf16) * Mma.Low(b, bf16) + Mma.High(a, bf16) * Mma.High(b, bf16);
}
