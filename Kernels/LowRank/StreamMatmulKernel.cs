using ILGPU;
using Kernels.Cuda.Primitives;

namespace Kernels.LowRank;

/// <summary>Launch parameters of the one-pass streaming product.</summary>
internal struct StreamParams
{
    public int M, N, K, R;
    /// <summary>Threads along r / output columns and along rows; row block BM = 8·Ty, rank padded to 8·Tx.</summary>
    public int Tx, Ty;
    public int HasBias;
    /// <summary>1 when x rows (K % 8 == 0), V and U rows (r % 8 == 0) can be read as 16-byte vectors.</summary>
    public int VecX, VecFactors;
    /// <summary>1 when y rows can be written 4 elements (8 bytes) at a time.</summary>
    public int VecY;
}

/// <summary>
/// y = ((x·V)⊙s)·Uᵀ (+ bias) in one pass (FlashSVD's streaming idea, research/lowrank.md §3, without its 2-D-grid
/// recompute): a group owns BM rows of x, computes their r-wide intermediate T = (x·V)⊙s into shared memory (f32,
/// never rounded, never written to device memory), then sweeps all N output columns against U. x is read once, V and U
/// once per row block (from L2), y written once: the compulsory traffic of §7. Both products use the family's 8×8
/// register tile (<see cref="Accumulator8x8"/>) on f32 shared tiles, with 16-bit operands widened as they are staged.
/// </summary>
internal static class StreamMatmulKernel
{
    public const int MaxRank = 128;
    private const int MaxRows = 64;
    private const int BlockK = 8;

    internal static void Kernel<T, TWord>(ArrayView<T> x, ArrayView<T> v, ArrayView<float> s, ArrayView<T> u,
        ArrayView<T> bias, ArrayView<T> y, StreamParams p)
        where T : unmanaged
        where TWord : struct, IHalfWord<T>
    {
        var xTile = SharedMemory.Allocate<Float4>(MaxRows * BlockK / 4);    // [k][row]
        var fTile = SharedMemory.Allocate<Float4>(MaxRank * BlockK / 4);    // [k][rank] in stage 1, [rank][col] in stage 2
        var tTile = SharedMemory.Allocate<Float4>(MaxRank * MaxRows / 4);   // T: [rank][row]
        int tid = Group.IdxX, threads = Group.DimX;
        int tx = tid % p.Tx, ty = tid / p.Tx;
        int bm = 8 * p.Ty, rp = 8 * p.Tx; // row block, padded rank (= output tile width)
        int blocks = (p.M + bm - 1) / bm;

        for (int block = Grid.IdxX; block < blocks; block += Grid.DimX)
        {
            int m0 = block * bm;
            // Stage 1: T = x[m0.., :]·V over all of K.
            var acc = default(Accumulator8x8);
            for (int k0 = 0; k0 < p.K; k0 += BlockK)
            {
                StageRows<T, TWord>(x, p.K, m0, p.M, k0, p.K, xTile, bm, p.VecX, tid, threads);
                StageColumns<T, TWord>(v, p.R, k0, p.K, 0, p.R, fTile, rp, p.VecFactors, tid, threads);
                Group.Barrier();
                for (int kk = 0; kk < BlockK; kk++)
                {
                    int ra = kk * (bm / 4) + ty, rb = kk * (rp / 4) + tx;
                    acc.Fma(xTile[ra], xTile[ra + bm / 8], fTile[rb], fTile[rb + rp / 8]);
                }
                Group.Barrier();
            }
            // T⊙s to shared memory, rank-major so stage 2 reads it exactly like a staged A tile.
            var tScalar = tTile.Cast<float>();
            int r0 = 4 * ty, r1 = bm / 2 + 4 * ty, c0 = 4 * tx, c1 = rp / 2 + 4 * tx;
            PutT(tScalar, s, p.R, bm, r0 + 0, c0, c1, acc.Low(0), acc.High(0));
            PutT(tScalar, s, p.R, bm, r0 + 1, c0, c1, acc.Low(1), acc.High(1));
            PutT(tScalar, s, p.R, bm, r0 + 2, c0, c1, acc.Low(2), acc.High(2));
            PutT(tScalar, s, p.R, bm, r0 + 3, c0, c1, acc.Low(3), acc.High(3));
            PutT(tScalar, s, p.R, bm, r1 + 0, c0, c1, acc.Low(4), acc.High(4));
            PutT(tScalar, s, p.R, bm, r1 + 1, c0, c1, acc.Low(5), acc.High(5));
            PutT(tScalar, s, p.R, bm, r1 + 2, c0, c1, acc.Low(6), acc.High(6));
            PutT(tScalar, s, p.R, bm, r1 + 3, c0, c1, acc.Low(7), acc.High(7));
            Group.Barrier();

            // Stage 2: sweep all of N in tiles of rp columns: y[rows, n0..] = T·U[n0.., :]ᵀ.
            for (int n0 = 0; n0 < p.N; n0 += rp)
            {
                var out8 = default(Accumulator8x8);
                for (int q0 = 0; q0 < p.R; q0 += BlockK)
                {
                    StageRows<T, TWord>(u, p.R, n0, p.N, q0, p.R, fTile, rp, p.VecFactors, tid, threads);
                    Group.Barrier();
                    for (int kk = 0; kk < BlockK; kk++)
                    {
                        int ra = (q0 + kk) * (bm / 4) + ty, rb = kk * (rp / 4) + tx;
                        out8.Fma(tTile[ra], tTile[ra + bm / 8], fTile[rb], fTile[rb + rp / 8]);
                    }
                    Group.Barrier();
                }
                int n0c = n0 + 4 * tx, n1c = n0 + rp / 2 + 4 * tx;
                PutY<T, TWord>(y, bias, p, m0 + r0 + 0, n0c, n1c, out8.Low(0), out8.High(0));
                PutY<T, TWord>(y, bias, p, m0 + r0 + 1, n0c, n1c, out8.Low(1), out8.High(1));
                PutY<T, TWord>(y, bias, p, m0 + r0 + 2, n0c, n1c, out8.Low(2), out8.High(2));
                PutY<T, TWord>(y, bias, p, m0 + r0 + 3, n0c, n1c, out8.Low(3), out8.High(3));
                PutY<T, TWord>(y, bias, p, m0 + r1 + 0, n0c, n1c, out8.Low(4), out8.High(4));
                PutY<T, TWord>(y, bias, p, m0 + r1 + 1, n0c, n1c, out8.Low(5), out8.High(5));
                PutY<T, TWord>(y, bias, p, m0 + r1 + 2, n0c, n1c, out8.Low(6), out8.High(6));
                PutY<T, TWord>(y, bias, p, m0 + r1 + 3, n0c, n1c, out8.Low(7), out8.High(7));
            }
            Group.Barrier(); // the next row block overwrites T
        }
    }

    /// <summary>
    /// Stages rows [row0, row0 + tileRows) × k [k0, k0 + 8) of a row-major rows×ld matrix (k contiguous) as
    /// tile[k·tileRows + row] in f32; one 16-byte vector is a whole 8-wide k slice of a row. Zero outside.
    /// </summary>
    internal static void StageRows<T, TWord>(ArrayView<T> src, int ld, int row0, int rows, int k0, int kEnd,
        ArrayView<Float4> tile, int tileRows, int vec, int tid, int threads)
        where T : unmanaged
        where TWord : struct, IHalfWord<T>
    {
        var scalar = tile.Cast<float>();
        for (int o = tid; o < tileRows; o += threads)
        {
            int row = row0 + o;
            long at = (long)row * ld + k0;
            if (vec != 0 && row < rows && k0 + 7 < kEnd)
            {
                var w = src.Cast<UInt4>()[at >> 3];
                scalar[0 * tileRows + o] = default(TWord).Widen(w.X);
                scalar[1 * tileRows + o] = default(TWord).Widen(w.X >> 16);
                scalar[2 * tileRows + o] = default(TWord).Widen(w.Y);
                scalar[3 * tileRows + o] = default(TWord).Widen(w.Y >> 16);
                scalar[4 * tileRows + o] = default(TWord).Widen(w.Z);
                scalar[5 * tileRows + o] = default(TWord).Widen(w.Z >> 16);
                scalar[6 * tileRows + o] = default(TWord).Widen(w.W);
                scalar[7 * tileRows + o] = default(TWord).Widen(w.W >> 16);
            }
            else
            {
                for (int j = 0; j < BlockK; j++)
                    scalar[j * tileRows + o] = row < rows && k0 + j < kEnd ? Load<T, TWord>(src, at + j) : 0f;
            }
        }
    }

    /// <summary>
    /// Stages k rows [k0, k0 + 8) × columns [col0, col0 + tileCols) of a row-major K×ld matrix (columns contiguous)
    /// as tile[k·tileCols + col − col0]; one 16-byte vector is 8 consecutive columns. Zero outside.
    /// </summary>
    internal static void StageColumns<T, TWord>(ArrayView<T> src, int ld, int k0, int kEnd, int col0, int cols,
        ArrayView<Float4> tile, int tileCols, int vec, int tid, int threads)
        where T : unmanaged
        where TWord : struct, IHalfWord<T>
    {
        var scalar = tile.Cast<float>();
        int perRow = tileCols / 8;
        for (int ch = tid; ch < BlockK * perRow; ch += threads)
        {
            int kk = ch / perRow, cl = (ch - kk * perRow) * 8, c = col0 + cl;
            int k = k0 + kk;
            long at = (long)k * ld + c;
            int d = kk * tileCols + cl;
            if (vec != 0 && k < kEnd && c + 7 < cols)
            {
                var w = src.Cast<UInt4>()[at >> 3];
                scalar[d] = default(TWord).Widen(w.X);
                scalar[d + 1] = default(TWord).Widen(w.X >> 16);
                scalar[d + 2] = default(TWord).Widen(w.Y);
                scalar[d + 3] = default(TWord).Widen(w.Y >> 16);
                scalar[d + 4] = default(TWord).Widen(w.Z);
                scalar[d + 5] = default(TWord).Widen(w.Z >> 16);
                scalar[d + 6] = default(TWord).Widen(w.W);
                scalar[d + 7] = default(TWord).Widen(w.W >> 16);
            }
            else
            {
                for (int j = 0; j < 8; j++)
                    scalar[d + j] = k < kEnd && c + j < cols ? Load<T, TWord>(src, at + j) : 0f;
            }
        }
    }

    internal static float Load<T, TWord>(ArrayView<T> src, long index)
        where T : unmanaged
        where TWord : struct, IHalfWord<T> =>
        default(TWord).Widen(default(TWord).Bits(src[index]));

    /// <summary>T[rank][row] = acc(row, rank)·s[rank]; padded ranks (≥ r) are zero already (V was zero-filled).</summary>
    private static void PutT(ArrayView<float> t, ArrayView<float> s, int r, int bm, int row, int c0, int c1, Float4 lo, Float4 hi)
    {
        t[(c0 + 0) * bm + row] = c0 + 0 < r ? lo.X * s[c0 + 0] : 0f;
        t[(c0 + 1) * bm + row] = c0 + 1 < r ? lo.Y * s[c0 + 1] : 0f;
        t[(c0 + 2) * bm + row] = c0 + 2 < r ? lo.Z * s[c0 + 2] : 0f;
        t[(c0 + 3) * bm + row] = c0 + 3 < r ? lo.W * s[c0 + 3] : 0f;
        t[(c1 + 0) * bm + row] = c1 + 0 < r ? hi.X * s[c1 + 0] : 0f;
        t[(c1 + 1) * bm + row] = c1 + 1 < r ? hi.Y * s[c1 + 1] : 0f;
        t[(c1 + 2) * bm + row] = c1 + 2 < r ? hi.Z * s[c1 + 2] : 0f;
        t[(c1 + 3) * bm + row] = c1 + 3 < r ? hi.W * s[c1 + 3] : 0f;
    }

    internal static void PutY<T, TWord>(ArrayView<T> y, ArrayView<T> bias, StreamParams p, int row, int c0, int c1, Float4 lo, Float4 hi)
        where T : unmanaged
        where TWord : struct, IHalfWord<T>
    {
        if (row >= p.M) return;
        PutQuad<T, TWord>(y, bias, p, row, c0, lo);
        PutQuad<T, TWord>(y, bias, p, row, c1, hi);
    }

    /// <summary>Four consecutive outputs: one 8-byte store when aligned, else element by element.</summary>
    private static void PutQuad<T, TWord>(ArrayView<T> y, ArrayView<T> bias, StreamParams p, int row, int col, Float4 v)
        where T : unmanaged
        where TWord : struct, IHalfWord<T>
    {
        if (col >= p.N) return;
        if (p.HasBias != 0)
        {
            v.X += Load<T, TWord>(bias, col);
            if (col + 1 < p.N) v.Y += Load<T, TWord>(bias, col + 1);
            if (col + 2 < p.N) v.Z += Load<T, TWord>(bias, col + 2);
            if (col + 3 < p.N) v.W += Load<T, TWord>(bias, col + 3);
        }
        long at = (long)row * p.N + col;
        if (p.VecY != 0 && col + 3 < p.N)
        {
            uint lo = default(TWord).Bits(default(TWord).Narrow(v.X)) | ((uint)default(TWord).Bits(default(TWord).Narrow(v.Y)) << 16);
            uint hi = default(TWord).Bits(default(TWord).Narrow(v.Z)) | ((uint)default(TWord).Bits(default(TWord).Narrow(v.W)) << 16);
            y.Cast<ulong>()[at >> 2] = lo | ((ulong)hi << 32);
            return;
        }
        y[at] = default(TWord).Narrow(v.X);
        if (col + 1 < p.N) y[at + 1] = default(TWord).Narrow(v.Y);
        if (col + 2 < p.N) y[at + 2] = default(TWord).Narrow(v.Z);
        if (col + 3 < p.N) y[at + 3] = default(TWord).Narrow(v.W);
    }
}
