using ILGPU;
using ILGPU.Runtime;
using Kernels.Runtime;
using Kernels.Tensors;

namespace Kernels.LowRank;

/// <summary>Launch parameters of <see cref="SimtGemm"/> (one struct so the kernel signature stays short).</summary>
internal struct GemmParams
{
    public int M, N, K, Lda, Ldb, Ldc;
    public float Alpha, Beta;
    public int TilesM, TilesN, Splits, KChunk;
    /// <summary>Threads along N and along M; the block tile is (8·Ty)×(8·Tx).</summary>
    public int Tx, Ty;
    /// <summary>1 when the operand's rows may be read as 16-byte vectors (aligned base, leading dimension % 4 == 0).</summary>
    public int VecA, VecB, VecC;
}

/// <summary>
/// The f32 SIMT GEMM of the low-rank family: C = α·op(A)·op(B) + β·C, with op() chosen per operand by a struct layout
/// parameter (<see cref="NormalLayout"/> / <see cref="TransposedLayout"/>). Subspace iteration needs ‖PᵀP − I‖ ≤ 1e-5, which f16
/// or bf16 tensor-core operands cannot give, so every f32 product of the family (GaLore projections, Gram matrices,
/// G·Z, Gᵀ·P) runs on this one kernel.
/// <para>
/// Shape of the loop: a group of Tx×Ty threads owns a (8·Ty)×(8·Tx) tile of C and walks K in steps of 8. Both operand
/// tiles are staged in shared memory k-major (a row of the tile holds one k for all rows/columns), loaded with 16-byte
/// vectors along whichever dimension is contiguous in memory; each thread then reads two 16-byte vectors of A and two
/// of B per k and does 64 FMAs into its hand-unrolled 8×8 register tile (<see cref="Accumulator8x8"/>).
/// </para>
/// <para>
/// Tall-skinny products (Gram matrices YᵀY, Gᵀ·P with K in the thousands and a tiny C) split K across groups. Each
/// split writes α·partial into a workspace slab and <see cref="ReduceSplits"/> sums the slabs in split order, so the
/// result is bit-identical from run to run: no float atomics.
/// </para>
/// </summary>
internal static class SimtGemm
{
    /// <summary>K step of the main loop.</summary>
    public const int BlockK = 8;

    /// <summary>Largest tile side (8 × 16 threads): shared tiles are sized for it.</summary>
    private const int MaxTileSide = 128;

    private const int TileVectors = MaxTileSide * BlockK / 4;

    /// <summary>The main kernel; one group computes one (tile, split) at a time, grid-stride over all of them.</summary>
    internal static void GemmKernel<TA, TB>(ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, GemmParams p)
        where TA : struct, IOperandLayout
        where TB : struct, IOperandLayout
    {
        var aTile = SharedMemory.Allocate<Float4>(TileVectors);
        var bTile = SharedMemory.Allocate<Float4>(TileVectors);
        int tid = Group.IdxX, threads = Group.DimX;
        int tx = tid % p.Tx, ty = tid / p.Tx;
        int bm = 8 * p.Ty, bn = 8 * p.Tx;
        int aRow = bm / 4, bRow = bn / 4; // Float4s per k-row of each tile
        int tiles = p.TilesM * p.TilesN;
        int work = tiles * p.Splits;

        for (int item = Grid.IdxX; item < work; item += Grid.DimX)
        {
            int split = item / tiles, t = item - split * tiles;
            int m0 = t / p.TilesN * bm, n0 = t % p.TilesN * bn;
            int kBegin = split * p.KChunk;
            int kEnd = Math.Min(p.K, kBegin + p.KChunk);
            var acc = default(Accumulator8x8);

            for (int k0 = kBegin; k0 < kEnd; k0 += BlockK)
            {
                // A is M×K: contiguous along k when stored row-major. B is K×N: contiguous along k when transposed.
                LoadTile(a, p.Lda, m0, p.M, k0, kEnd, aTile, bm, !default(TA).Transposed, p.VecA, tid, threads);
                LoadTile(b, p.Ldb, n0, p.N, k0, kEnd, bTile, bn, default(TB).Transposed, p.VecB, tid, threads);
                Group.Barrier();
                for (int kk = 0; kk < BlockK; kk++)
                {
                    int ra = kk * aRow + ty, rb = kk * bRow + tx;
                    acc.Fma(aTile[ra], aTile[ra + aRow / 2], bTile[rb], bTile[rb + bRow / 2]);
                }
                Group.Barrier();
            }

            // Thread rows: 4·ty + {0..3} and bm/2 + 4·ty + {0..3}; columns likewise with tx and bn/2.
            int r0 = m0 + 4 * ty, r1 = m0 + bm / 2 + 4 * ty;
            int c0 = n0 + 4 * tx, c1 = n0 + bn / 2 + 4 * tx;
            // Split-K partials go to slab `split` of the workspace (dense, ld = N). No SubView: an offset view would hide
            // the 16-byte alignment from ILGPU and split the vector stores.
            long slab = p.Splits > 1 ? (long)split * p.M * p.N : 0;
            int ldc = p.Splits > 1 ? p.N : p.Ldc;
            float beta = p.Splits > 1 ? 0f : p.Beta;
            int vec = p.Splits > 1 ? (p.N % 4 == 0 ? 1 : 0) : p.VecC;
            StoreRow(c, slab, ldc, r0 + 0, c0, c1, acc.Low(0), acc.High(0), p, beta, vec);
            StoreRow(c, slab, ldc, r0 + 1, c0, c1, acc.Low(1), acc.High(1), p, beta, vec);
            StoreRow(c, slab, ldc, r0 + 2, c0, c1, acc.Low(2), acc.High(2), p, beta, vec);
            StoreRow(c, slab, ldc, r0 + 3, c0, c1, acc.Low(3), acc.High(3), p, beta, vec);
            StoreRow(c, slab, ldc, r1 + 0, c0, c1, acc.Low(4), acc.High(4), p, beta, vec);
            StoreRow(c, slab, ldc, r1 + 1, c0, c1, acc.Low(5), acc.High(5), p, beta, vec);
            StoreRow(c, slab, ldc, r1 + 2, c0, c1, acc.Low(6), acc.High(6), p, beta, vec);
            StoreRow(c, slab, ldc, r1 + 3, c0, c1, acc.Low(7), acc.High(7), p, beta, vec);
        }
    }

    /// <summary>
    /// Stages a tile of an operand into shared memory, k-major: tile[k·tileOuter + o] = X(outer0 + o, k0 + k), zero
    /// outside the matrix or past <paramref name="kEnd"/>. <paramref name="kContiguous"/> says which dimension is
    /// contiguous in memory; the 16-byte load runs along it.
    /// </summary>
    private static void LoadTile(ArrayView<float> src, int ld, int outer0, int outerLen, int k0, int kEnd,
        ArrayView<Float4> tile, int tileOuter, bool kContiguous, int vec, int tid, int threads)
    {
        var tileScalar = tile.Cast<float>();
        if (kContiguous)
        {
            // Element (o, k) at o·ld + k: one vector holds 4 consecutive k of one row; it is scattered to 4 k-rows.
            int chunks = tileOuter * (BlockK / 4);
            for (int ch = tid; ch < chunks; ch += threads)
            {
                int o = ch >> 1, kq = (ch & 1) * 4;
                int go = outer0 + o, gk = k0 + kq;
                Float4 v;
                if (vec != 0 && go < outerLen && gk + 3 < kEnd)
                    v = src.Cast<Float4>()[(go * ld + gk) >> 2];
                else
                    v = new Float4(
                        Fetch(src, go < outerLen && gk < kEnd, go * ld + gk),
                        Fetch(src, go < outerLen && gk + 1 < kEnd, go * ld + gk + 1),
                        Fetch(src, go < outerLen && gk + 2 < kEnd, go * ld + gk + 2),
                        Fetch(src, go < outerLen && gk + 3 < kEnd, go * ld + gk + 3));
                tileScalar[kq * tileOuter + o] = v.X;
                tileScalar[(kq + 1) * tileOuter + o] = v.Y;
                tileScalar[(kq + 2) * tileOuter + o] = v.Z;
                tileScalar[(kq + 3) * tileOuter + o] = v.W;
            }
        }
        else
        {
            // Element (o, k) at k·ld + o: one vector holds 4 consecutive o of one k; it lands as one vector.
            int perRow = tileOuter / 4;
            int chunks = BlockK * perRow;
            for (int ch = tid; ch < chunks; ch += threads)
            {
                int kk = ch / perRow, oq = (ch - kk * perRow) * 4;
                int go = outer0 + oq, gk = k0 + kk;
                Float4 v;
                if (vec != 0 && gk < kEnd && go + 3 < outerLen)
                    v = src.Cast<Float4>()[(gk * ld + go) >> 2];
                else
                    v = new Float4(
                        Fetch(src, gk < kEnd && go < outerLen, gk * ld + go),
                        Fetch(src, gk < kEnd && go + 1 < outerLen, gk * ld + go + 1),
                        Fetch(src, gk < kEnd && go + 2 < outerLen, gk * ld + go + 2),
                        Fetch(src, gk < kEnd && go + 3 < outerLen, gk * ld + go + 3));
                tile[kk * perRow + (oq >> 2)] = v;
            }
        }
    }

    private static float Fetch(ArrayView<float> src, bool inside, int index) => inside ? src[index] : 0f;

    /// <summary>Writes 8 results of one row: C = α·acc + β·C (β = 0 never reads C, so NaN-poisoned C is fine).</summary>
    private static void StoreRow(ArrayView<float> c, long slab, int ldc, int row, int c0, int c1, Float4 lo, Float4 hi,
        GemmParams p, float beta, int vec)
    {
        if (row >= p.M) return;
        StoreQuad(c, slab, ldc, row, c0, p.Alpha * lo, p.N, beta, vec);
        StoreQuad(c, slab, ldc, row, c1, p.Alpha * hi, p.N, beta, vec);
    }

    private static void StoreQuad(ArrayView<float> c, long slab, int ldc, int row, int col, Float4 v, int n, float beta, int vec)
    {
        long at = slab + (long)row * ldc + col;
        if (vec != 0 && col + 3 < n)
        {
            var c4 = c.Cast<Float4>();
            if (beta != 0f) v = v + beta * c4[at >> 2];
            c4[at >> 2] = v;
            return;
        }
        if (col < n) c[at] = beta != 0f ? v.X + beta * c[at] : v.X;
        if (col + 1 < n) c[at + 1] = beta != 0f ? v.Y + beta * c[at + 1] : v.Y;
        if (col + 2 < n) c[at + 2] = beta != 0f ? v.Z + beta * c[at + 2] : v.Z;
        if (col + 3 < n) c[at + 3] = beta != 0f ? v.W + beta * c[at + 3] : v.W;
    }

    /// <summary>C(i, j) = Σ_s partial[s](i, j) in split order, + β·C: the deterministic second half of split-K.</summary>
    internal static void ReduceSplits(Index1D index, ArrayView<float> partial, ArrayView<float> c, int m, int n, int ldc,
        int splits, float beta)
    {
        long total = (long)m * n;
        for (long e = index; e < total; e += (long)Grid.DimX * Group.DimX)
        {
            float s = partial[e];
            for (int k = 1; k < splits; k++) s += partial[k * total + e];
            int i = (int)(e / n), j = (int)(e - (long)i * n);
            long at = (long)i * ldc + j;
            c[at] = beta != 0f ? s + beta * c[at] : s;
        }
    }

    // ---------------------------------------------------------------- host side

    /// <summary>Thread layout of a group on <paramref name="device"/>: 16×16 (128×128 tile) on a GPU, 4×4 (32×32) on the CPU accelerator.</summary>
    internal static (int Tx, int Ty) GroupShape(ComputeDevice device)
    {
        // The CPU accelerator runs one OS thread per group thread: 16 threads keep it fast at test shapes.
        // Groups stay whole warps (a partial warp makes the CPU runtime's barriers crawl).
        if (!device.IsCuda) return device.Accelerator.WarpSize >= 32 ? (8, 4) : (4, 4);
        return device.Accelerator.MaxNumThreadsPerGroup >= 256 ? (16, 16) : (16, 8);
    }

    /// <summary>Partial slabs a call will use (1 = no split) for an M×N result with reduction length K.</summary>
    internal static int SplitsFor(ComputeDevice device, int m, int n, int k)
    {
        var (tx, ty) = GroupShape(device);
        long tiles = (long)Ceil(m, 8 * ty) * Ceil(n, 8 * tx);
        int maxByK = Math.Max(1, k / (BlockK * (device.IsCuda ? 32 : 4)));
        long wanted = device.IsCuda ? Ceil(2 * device.Accelerator.NumMultiprocessors, (int)Math.Min(tiles, int.MaxValue)) : (tiles <= 2 ? 4 : 1);
        return (int)Math.Clamp(Math.Min(wanted, maxByK), 1, 64);
    }

    /// <summary>Floats of workspace a call needs (0 when K is not split).</summary>
    internal static long WorkspaceFor(ComputeDevice device, int m, int n, int k)
    {
        int splits = SplitsFor(device, m, n, k);
        return splits > 1 ? (long)splits * m * n : 0;
    }

    /// <summary>
    /// Enqueues C = α·A·B + β·C on the device's stream. C must not be transposed storage unless it is handled by the
    /// caller swapping (Cᵀ = Bᵀ·Aᵀ; see <see cref="Multiply"/>). <paramref name="workspace"/> must hold
    /// <see cref="WorkspaceFor"/> floats (it may be empty when that is 0).
    /// </summary>
    internal static void Multiply(ComputeDevice device, MatrixRef a, MatrixRef b, MatrixRef c, float alpha, float beta,
        ArrayView<float> workspace, int? splitsOverride = null)
    {
        if (c.IsTransposed)
        {
            Multiply(device, b.T, a.T, c.T, alpha, beta, workspace, splitsOverride);
            return;
        }
        if (a.Rows != c.Rows || b.Cols != c.Cols || a.Cols != b.Rows)
            throw new InvalidOperationException($"GEMM shapes {a.Rows}×{a.Cols} · {b.Rows}×{b.Cols} → {c.Rows}×{c.Cols}.");
        int m = c.Rows, n = c.Cols, k = a.Cols;
        if (m == 0 || n == 0) return;
        var (tx, ty) = GroupShape(device);
        int splits = k == 0 ? 1 : splitsOverride ?? SplitsFor(device, m, n, k);
        int kChunk = Ceil(Math.Max(k, 1), splits * BlockK) * BlockK;
        splits = Math.Max(1, Ceil(Math.Max(k, 1), kChunk));
        var p = new GemmParams
        {
            M = m, N = n, K = k, Lda = a.Ld, Ldb = b.Ld, Ldc = c.Ld, Alpha = alpha, Beta = beta,
            TilesM = Ceil(m, 8 * ty), TilesN = Ceil(n, 8 * tx), Splits = splits, KChunk = kChunk, Tx = tx, Ty = ty,
            VecA = a.VectorAligned ? 1 : 0, VecB = b.VectorAligned ? 1 : 0, VecC = c.VectorAligned ? 1 : 0,
        };
        if (splits > 1 && workspace.Length < (long)splits * m * n)
            throw new InvalidOperationException($"Split-K GEMM needs {(long)splits * m * n} floats of workspace, got {workspace.Length}.");
        var target = splits > 1 ? workspace : c.View;
        int work = p.TilesM * p.TilesN * splits;
        int groups = device.IsCuda ? work : Math.Min(work, 4);
        var config = new KernelConfig(groups, tx * ty);
        switch ((a.IsTransposed, b.IsTransposed))
        {
            case (false, false): Kernel<NormalLayout, NormalLayout>(device)(device.Stream, config, a.View, b.View, target, p); break;
            case (false, true): Kernel<NormalLayout, TransposedLayout>(device)(device.Stream, config, a.View, b.View, target, p); break;
            case (true, false): Kernel<TransposedLayout, NormalLayout>(device)(device.Stream, config, a.View, b.View, target, p); break;
            default: Kernel<TransposedLayout, TransposedLayout>(device)(device.Stream, config, a.View, b.View, target, p); break;
        }
        if (splits > 1)
        {
            var reduce = device.GetKernel((typeof(SimtGemm), nameof(ReduceSplits)), acc =>
                acc.LoadCatalogAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int, int, int, float>(ReduceSplits));
            int rgroups = device.GroupsFor((long)m * n, device.ElementwiseGroupSize) * device.ElementwiseGroupSize;
            reduce(device.Stream, rgroups, workspace, c.View, m, n, c.Ld, splits, beta);
        }
    }

    private static Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmParams>
        Kernel<TA, TB>(ComputeDevice device)
        where TA : struct, IOperandLayout
        where TB : struct, IOperandLayout =>
        device.GetKernel((typeof(SimtGemm), typeof(TA), typeof(TB)), acc =>
            acc.LoadCatalogKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmParams>(GemmKernel<TA, TB>));

    internal static int Ceil(int a, int b) => (a + b - 1) / b;
}
