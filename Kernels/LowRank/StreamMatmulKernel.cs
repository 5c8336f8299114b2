using ILGPU;
using Kernels.Cuda.Primitives;
using Kernels.Engine;
using Kernels.Tensors;

namespace Kernels.LowRank;

/// <summary>Launch parameters of the one-pass streaming product.</summary>
internal struct StreamParams
{
    public int M, N, K, R;
    /// <summary>r rounded up to 16 (one mma k step): ranks r..RPad−1 of T are zeros, ranks ≥ RPad are never read.</summary>
    public int RPad;
    /// <summary>Stage 1 as an engine problem: weights Vᵀ (RPad rows), tokens = the 64 rows of the block.</summary>
    public GemmProblem Stage1;
    /// <summary>Stage 2 as an engine problem: weights U (N rows), tokens = the M rows of x, K = r.</summary>
    public GemmProblem Stage2;
}

/// <summary>
/// y = ((x·V)⊙s)·Uᵀ (+ bias) in one pass on tensor cores (FlashSVD's streaming idea, docs/lowrank.md §3, without its
/// 2-D-grid recompute). A group (4 warps) owns 64 rows of x. Stage 1 computes T = x_blk·V over K with the engine's
/// primitives: Vᵀ (via <see cref="FactorTransposeProducer"/>) and the x tile (<see cref="TileCopy"/>) in swizzled
/// shared tiles, <see cref="WarpTile64x32{TMma}"/> per warp (2×2 warps = 128 ranks × 64 rows). Its epilogue scales by s
/// in f32 and rounds T to the mma input type (RNE) straight into two swizzled 64×64 shared tiles — exactly the
/// engine's activation layout — so stage 2 sweeps all of N in 128-row tiles of U (<see cref="TileCopy"/>, the engine's
/// weight layout, double-buffered) with y_tile = U_tile·Tᵀ, + bias, stored by <see cref="StoreEpilogue{T, TConvert}"/>. The M×r
/// intermediate never reaches device memory; x is read once, V and U once per row block (from L2), y written once.
/// Rounding T to 16 bits (the previous SIMT kernel kept it in f32) adds one relative rounding of 2⁻¹¹ (f16) or 2⁻⁸
/// (bf16) per T element, the same as the two-stage path's 16-bit intermediate; the tests hold it to the f16/bf16 bounds
/// against the f64 reference.
/// </summary>
internal static class StreamMatmulKernel
{
    public const int MaxRank = 128;
    /// <summary>Rows of x per group.</summary>
    public const int BlockRows = 64;
    /// <summary>Output columns (rows of U) per stage-2 tile.</summary>
    public const int BlockColumns = 128;
    private const int TBytes = 2 * BlockRows * TileEngineConstants.RowBytes;          // T: two 64×64 tiles (ranks 0..63, 64..127)
    private const int WeightBytes = MaxRank * TileEngineConstants.RowBytes;           // Vᵀ tile in stage 1, one U buffer in stage 2
    /// <summary>
    /// Dynamic shared memory of the kernel, without the CPU-only <see cref="WarpScratch"/>: T, then two U buffers in
    /// stage 2 (stage 1 puts Vᵀ in the first and the 64-row x tile in the second). 48 KiB: no opt-in needed.
    /// </summary>
    public const int SharedBytes = TBytes + 2 * WeightBytes;

    /// <summary>The kernel; launch with 128 threads and <see cref="SharedBytes"/> (+ scratch) of dynamic shared memory.</summary>
    internal static void Kernel<T, TWord, TMma, TConv>(Matrix16 x, FactorTransposeProducer vt, ArrayView<float> s, Matrix16 u,
        StoreEpilogue<T, TConv> store, StreamParams p)
        where T : unmanaged
        where TWord : struct, IHalfWord<T>
        where TMma : struct, IMmaKind
        where TConv : struct, IElementConverter<T>
    {
        var shared = SharedMemory.GetDynamic<uint>();
        var scratch = new WarpScratch(shared);
        int thread = Group.IdxX;
        int warp = thread >> 5, lane = thread & 31;
        // 2×2 warps of 64×32: warp rows along the weight rows (ranks, then U rows), columns along the block's x rows.
        int warpRow0 = (warp & 1) * 64, warpColumn0 = (warp >> 1) * 32;
        int weightTile = UBuffer(0), xTile = UBuffer(1);
        var rankTile = new ScaledRankEpilogue<T, TWord, SwizzledRankTiles>(shared.Cast<T>(), s, p.R);
        int blocks = (p.M + BlockRows - 1) / BlockRows;

        for (int block = Grid.IdxX; block < blocks; block += Grid.DimX)
        {
            int m0 = block * BlockRows;
            // Stage 1: T = x[m0.., :]·V. Warps whose ranks are all padding skip the mma's (warp-uniform branch).
            var t = default(WarpTile64x32<TMma>);
            for (int k0 = 0; k0 < p.K; k0 += TileEngineConstants.TileK)
            {
                vt.Begin(new WeightTileRequest(shared, weightTile, 0, MaxRank, k0, k0 / TileEngineConstants.TileK, thread));
                TileCopy.Load(x, shared, xTile, BlockRows, m0, k0, thread);
                CpAsync.CommitGroup();
                CpAsync.WaitAll();
                Group.Barrier();
                if (warpRow0 < p.RPad)
                {
                    for (int kk = 0; kk < 4; kk++)
                        if (k0 + 16 * kk < p.K)
                            t.Step(shared, weightTile, xTile, warpRow0, warpColumn0, kk, lane, scratch);
                }
                Group.Barrier();
            }
            // T goes to its own region; the prologue's barrier below publishes it to stage 2.
            t.Finish(ref rankTile, p.Stage1, 0, warpRow0 + MmaFragment.RowOf(lane), warpColumn0 + MmaFragment.ColumnOf(lane));

            // Stage 2: y[m0.., n0..] = T·U[n0.., :]ᵀ for every 128-column tile of N, K = r (one or two 64-wide T
            // tiles). Steps walk (N tile, K tile) pairs; U tiles are double-buffered as in the engine's mainloop: the
            // copy of step s + 1 is in flight while step s multiplies.
            int kTiles = (p.RPad + TileEngineConstants.TileK - 1) / TileEngineConstants.TileK;
            int steps = (p.N + BlockColumns - 1) / BlockColumns * kTiles;
            TileCopy.Load(u, shared, UBuffer(0), BlockColumns, 0, 0, thread);
            CpAsync.CommitGroup();
            CpAsync.WaitAll();
            Group.Barrier();
            var y = default(WarpTile64x32<TMma>);
            for (int step = 0; step < steps; step++)
            {
                int nTile = step / kTiles, kTile = step - nTile * kTiles;
                int n0 = nTile * BlockColumns, k0 = kTile * TileEngineConstants.TileK;
                if (step + 1 < steps)
                {
                    int nextN = (step + 1) / kTiles;
                    TileCopy.Load(u, shared, UBuffer(step + 1), BlockColumns, nextN * BlockColumns,
                        (step + 1 - nextN * kTiles) * TileEngineConstants.TileK, thread);
                    CpAsync.CommitGroup();
                }
                if (n0 + warpRow0 < p.N)
                {
                    int tTile = kTile * BlockRows * TileEngineConstants.RowBytes;
                    for (int kk = 0; kk < 4; kk++)
                        if (k0 + 16 * kk < p.RPad)
                            y.Step(shared, UBuffer(step), tTile, warpRow0, warpColumn0, kk, lane, scratch);
                }
                if (kTile == kTiles - 1)
                {
                    y.Finish(ref store, p.Stage2, 0, n0 + warpRow0 + MmaFragment.RowOf(lane), m0 + warpColumn0 + MmaFragment.ColumnOf(lane));
                    y = default;
                }
                CpAsync.WaitAll();
                Group.Barrier();
            }
        }
    }

    /// <summary>Byte offset of the U buffer that stage-2 step <paramref name="step"/> uses (also stage 1's Vᵀ and x tiles).</summary>
    private static int UBuffer(int step) => TBytes + (step & 1) * WeightBytes;
}
