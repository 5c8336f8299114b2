using Kernels.Tensors;
using ILGPU;
using DeviceHalf = ILGPU.Half;

namespace Kernels.SpQR;

/// <summary>
/// 16 bytes as four 32-bit lanes: the unit of a <c>ld.global.v4.u32</c>. The SpQR GEMV reads two tile words (rows 2b and
/// 2b+1 of a tile) or eight permutation pairs with one. Public only because ILGPU's launcher must see kernel parameter types.
/// </summary>
public struct Word4
{
    /// <summary>Bytes 0–3.</summary>
    public uint X;
    /// <summary>Bytes 4–7.</summary>
    public uint Y;
    /// <summary>Bytes 8–11.</summary>
    public uint Z;
    /// <summary>Bytes 12–15.</summary>
    public uint W;
}

/// <summary>
/// Fused y = W·x for one token. One group per 16-row tile row (grid-stride over tile rows); eight lanes per 16×16
/// tile, each lane one 16-byte load = tile rows 2b and 2b+1, which carry the same statistics byte b, so three xor
/// shuffles rebuild the tile's second-order word. A warp covers consecutive tiles (coalesced); the group strides
/// across the tile columns. x is gathered from global memory through the permutation (cached, never staged whole in
/// shared memory, so there is no width limit). Outliers of the lane's two rows are added into the same f32
/// accumulators before the reduction. Shared memory: 16 floats a warp for the cross-warp sum.
/// </summary>
internal static class SpqrGemvKernel
{
    public const int MaxWarps = 32;

    public static void Kernel(ArrayView<Word4> dense, ArrayView<int> rowOffsets, ArrayView<uint> colVals,
        ArrayView<Word4> permQuads, ArrayView<uint> perm, ArrayView<DeviceHalf> x, ArrayView<DeviceHalf> y,
        int m, int n, int ptcsr)
    {
        var partial = SharedMemory.Allocate<float>(16 * MaxWarps);
        int lane = Warp.LaneIdx, warp = Warp.WarpIdx;
        int lanesPerTile = 8;
        int tilesPerWarp = Warp.WarpSize / lanesPerTile;
        int b = lane & 7;
        int q = warp * tilesPerWarp + (lane >> 3);
        int stride = Group.DimX / lanesPerTile;
        int warps = Group.DimX / Warp.WarpSize;
        int tileCols = (n + 15) >> 4, tileRows = (m + 15) >> 4;

        for (int tr = Grid.IdxX; tr < tileRows; tr += Grid.DimX)
        {
            float acc0 = 0f, acc1 = 0f;
            for (int tb = 0; tb < tileCols; tb += stride) // the same trip count for every lane: shuffles stay converged
            {
                int tc = tb + q;
                bool active = tc < tileCols;
                ulong w0 = 0, w1 = 0;
                if (active)
                {
                    Word4 v = dense[(tr * tileCols + tc) * 8 + b];
                    w0 = v.X | ((ulong)v.Y << 32);
                    w1 = v.Z | ((ulong)v.W << 32);
                }
                var scales = SpqrMath.RowPair(w0, w1, b);
                if (!active) continue;

                float s0 = scales.S0, z0 = scales.Z0, s1 = scales.S1, z1 = scales.Z1;
                int c0 = tc << 4;
                if (c0 + 16 <= n)
                {
                    Word4 pa = permQuads[tc * 2], pb = permQuads[tc * 2 + 1];
                    Step(ref acc0, ref acc1, w0, w1, 6, X(x, pa.X & 0xFFFFu), s0, z0, s1, z1);
                    Step(ref acc0, ref acc1, w0, w1, 9, X(x, pa.X >> 16), s0, z0, s1, z1);
                    Step(ref acc0, ref acc1, w0, w1, 12, X(x, pa.Y & 0xFFFFu), s0, z0, s1, z1);
                    Step(ref acc0, ref acc1, w0, w1, 15, X(x, pa.Y >> 16), s0, z0, s1, z1);
                    Step(ref acc0, ref acc1, w0, w1, 18, X(x, pa.Z & 0xFFFFu), s0, z0, s1, z1);
                    Step(ref acc0, ref acc1, w0, w1, 21, X(x, pa.Z >> 16), s0, z0, s1, z1);
                    Step(ref acc0, ref acc1, w0, w1, 24, X(x, pa.W & 0xFFFFu), s0, z0, s1, z1);
                    Step(ref acc0, ref acc1, w0, w1, 27, X(x, pa.W >> 16), s0, z0, s1, z1);
                    Step(ref acc0, ref acc1, w0, w1, 30, X(x, pb.X & 0xFFFFu), s0, z0, s1, z1);
                    Step(ref acc0, ref acc1, w0, w1, 33, X(x, pb.X >> 16), s0, z0, s1, z1);
                    Step(ref acc0, ref acc1, w0, w1, 36, X(x, pb.Y & 0xFFFFu), s0, z0, s1, z1);
                    Step(ref acc0, ref acc1, w0, w1, 39, X(x, pb.Y >> 16), s0, z0, s1, z1);
                    Step(ref acc0, ref acc1, w0, w1, 42, X(x, pb.Z & 0xFFFFu), s0, z0, s1, z1);
                    Step(ref acc0, ref acc1, w0, w1, 45, X(x, pb.Z >> 16), s0, z0, s1, z1);
                    Step(ref acc0, ref acc1, w0, w1, 48, X(x, pb.W & 0xFFFFu), s0, z0, s1, z1);
                    Step(ref acc0, ref acc1, w0, w1, 51, X(x, pb.W >> 16), s0, z0, s1, z1);
                }
                else
                {
                    // The last, partial tile column: padding columns hold codes but no weights.
                    for (int i = 0; i < n - c0; i++)
                        Step(ref acc0, ref acc1, w0, w1, 6 + 3 * i, X(x, (uint)SpqrMath.Perm(perm, c0 + i)), s0, z0, s1, z1);
                }
            }

            int r0 = (tr << 4) + 2 * b;
            acc0 += OutlierSum(rowOffsets, colVals, perm, x, m, r0, q, stride, ptcsr);
            acc1 += OutlierSum(rowOffsets, colVals, perm, x, m, r0 + 1, q, stride, ptcsr);

            for (int d = 8; d < Warp.WarpSize; d <<= 1)
            {
                acc0 += Warp.ShuffleXor(acc0, d);
                acc1 += Warp.ShuffleXor(acc1, d);
            }
            if (lane < 8)
            {
                partial[warp * 16 + 2 * b] = acc0;
                partial[warp * 16 + 2 * b + 1] = acc1;
            }
            Group.Barrier();
            int t = Group.IdxX;
            if (t < 16)
            {
                float sum = 0f;
                for (int w = 0; w < warps; w++) sum += partial[w * 16 + t];
                int r = (tr << 4) + t;
                if (r < m) y[r] = Fp16.Narrow(sum);
            }
            Group.Barrier();
        }
    }

    private static float X(ArrayView<DeviceHalf> x, uint column) => Fp16.Widen(x[(int)column]);

    private static void Step(ref float acc0, ref float acc1, ulong w0, ulong w1, int shift, float xv,
        float s0, float z0, float s1, float z1)
    {
        acc0 += SpqrMath.Dequantize(w0, shift, s0, z0) * xv;
        acc1 += SpqrMath.Dequantize(w1, shift, s1, z1) * xv;
    }

    /// <summary>This lane's share (every <paramref name="stride"/>-th entry from <paramref name="q"/>) of row r's outlier products.</summary>
    private static float OutlierSum(ArrayView<int> rowOffsets, ArrayView<uint> colVals, ArrayView<uint> perm,
        ArrayView<DeviceHalf> x, int m, int r, int q, int stride, int ptcsr)
    {
        if (r >= m) return 0f;
        float acc = 0f;
        if (ptcsr != 0)
        {
            int start = rowOffsets[r >> 4] + (r & 15), end = rowOffsets[(r >> 4) + 1];
            for (int e = start + 16 * q; e < end; e += 16 * stride)
            {
                uint cv = colVals[e];
                if (cv != 0) acc += Fp16.ToFloat((ushort)(cv >> 16)) * X(x, (uint)SpqrMath.Perm(perm, (int)(cv & 0xFFFFu)));
            }
        }
        else
        {
            int end = rowOffsets[r + 1];
            for (int e = rowOffsets[r] + q; e < end; e += stride)
            {
                uint cv = colVals[e];
                acc += Fp16.ToFloat((ushort)(cv >> 16)) * X(x, (uint)SpqrMath.Perm(perm, (int)(cv & 0xFFFFu)));
            }
        }
        return acc;
    }
}
