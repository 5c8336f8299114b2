using ILGPU;
using ILGPU.Runtime;
using Kernels.Cuda.Primitives;
using Kernels.Engine;
using Kernels.Runtime;
using Kernels.Tensors;

namespace Kernels.Lora;

/// <summary>
/// dS = α·dY·B (M×r) and dB = α·dYᵀ·S (N×r) in one sweep over dY, each element of which is loaded from global memory
/// exactly once (16-byte vectors where a row tile is whole and aligned). A group owns (a chunk of
/// <see cref="LoraBackwardPlan.ChunkRows"/> token rows, a range of <see cref="TileColumns"/>-column tiles of N). For
/// each tile it stages B's rows once, then walks its chunk <see cref="BlockRows"/> rows at a time: the staged dY block
/// is multiplied by B into the chunk's dS accumulators (shared memory, rows·r ≤ 4096) and, transposed, by the same
/// rows of S into the tile's dB accumulators, which are written as this chunk's partial plane when the chunk is done.
/// dB planes (one per chunk) and dS planes (one per range of N) are added afterwards in index order by
/// <see cref="LoraColumnProduct.SumChunks"/>; when there is only one, the group writes the result directly. No atomics,
/// and the partition depends only on the shape and the device's SM count, so results are bit-identical run to run.
/// </summary>
internal static class LoraDsDbSweep
{
    /// <summary>Columns of dY (rows of B) a tile covers.</summary>
    public const int TileColumns = 16;

    /// <summary>Token rows staged at a time.</summary>
    public const int BlockRows = 16;

    private const int MaxRank = LoraAdapterSet<float>.MaxSupportedRank;

    /// <summary>Arguments of <see cref="Kernel{T, TConvert, TWide}"/>.</summary>
    public readonly struct Args<T> where T : unmanaged
    {
        public readonly ArrayView<T> Dy;
        public readonly int Rows;
        public readonly int Columns;
        public readonly ArrayView<T> B;
        public readonly ArrayView<float> S;
        public readonly int Rank;
        public readonly float Alpha;
        public readonly int ChunkRows;
        public readonly int Splits;
        public readonly int TilesPerSplit;
        /// <summary>1 when every whole row tile of dY can be read as 16-byte vectors (aligned base, N a multiple of the lanes).</summary>
        public readonly int Vector;
        /// <summary>dS (Splits = 1) or Splits planes of M·r floats.</summary>
        public readonly ArrayView<float> Ds;
        /// <summary>dB (one chunk) or Chunks planes of N·r floats.</summary>
        public readonly ArrayView<float> Db;

        public Args(ArrayView<T> dy, int rows, int columns, ArrayView<T> b, ArrayView<float> s, int rank, float alpha,
            int chunkRows, int splits, int tilesPerSplit, int vector, ArrayView<float> ds, ArrayView<float> db)
        {
            Dy = dy; Rows = rows; Columns = columns; B = b; S = s; Rank = rank; Alpha = alpha; ChunkRows = chunkRows;
            Splits = splits; TilesPerSplit = tilesPerSplit; Vector = vector; Ds = ds; Db = db;
        }
    }

    /// <summary>Enqueues the sweep and, where the plan has more than one plane, the ordered reductions.</summary>
    public static void Launch<T, TConvert, TWide>(ComputeDevice device, ArrayView<T> dy, int m, int n, ArrayView<T> b,
        ArrayView<float> s, int r, float alpha, ArrayView<float> ds, ArrayView<float> db, in LoraBackwardPlan plan)
        where T : unmanaged where TConvert : struct, IElementConverter<T> where TWide : struct, IWideLoad
    {
        long dbPlanes = plan.Chunks > 1 ? (long)plan.Chunks * n * r : 0;
        long dsPlanes = plan.Splits > 1 ? (long)plan.Splits * m * r : 0;
        using var lease = dbPlanes + dsPlanes > 0 ? SplitKWorkspace.Rent(device, dbPlanes + dsPlanes) : default;
        var scratch = lease.View;
        var dbTarget = dbPlanes > 0 ? scratch.SubView(0, dbPlanes) : db;
        var dsTarget = dsPlanes > 0 ? scratch.SubView(dbPlanes, dsPlanes) : ds;
        int lanes = default(TWide).Lanes;
        int vector = n % lanes == 0 && (dy.LoadEffectiveAddressAsPtr().ToInt64() & 15) == 0 ? 1 : 0;
        var args = new Args<T>(dy, m, n, b, s, r, alpha, plan.ChunkRows, plan.Splits, plan.TilesPerSplit, vector, dsTarget, dbTarget);
        var kernel = device.GetKernel((typeof(LoraDsDbSweep), typeof(T)), acc => acc.LoadCatalogKernel<Args<T>>(Kernel<T, TConvert, TWide>));
        int group = LoraRowProduct.GroupSize(device);
        int items = plan.Chunks * plan.Splits;
        kernel(device.Stream, new KernelConfig(device.GroupsFor((long)items * group, group), group), args);
        if (dbPlanes > 0) LoraColumnProduct.SumChunks(device, dbTarget, plan.Chunks, (long)n * r, db);
        if (dsPlanes > 0) LoraColumnProduct.SumChunks(device, dsTarget, plan.Splits, (long)m * r, ds);
    }

    /// <summary>The sweep (grid-stride over chunk × split items).</summary>
    public static void Kernel<T, TConvert, TWide>(Args<T> args)
        where T : unmanaged where TConvert : struct, IElementConverter<T> where TWide : struct, IWideLoad
    {
        var dsAcc = SharedMemory.Allocate<float>(LoraBackwardPlan.AccumulatorFloats);
        var dbAcc = SharedMemory.Allocate<float>(TileColumns * MaxRank);
        var bTile = SharedMemory.Allocate<float>(TileColumns * MaxRank);
        var sBlock = SharedMemory.Allocate<float>(BlockRows * MaxRank);
        var yBlock = SharedMemory.Allocate<float>(BlockRows * TileColumns);
        int g = Group.DimX, tid = Group.IdxX, r = args.Rank, n = args.Columns;
        int lanes = default(TWide).Lanes, perRow = TileColumns / lanes;
        int chunks = (args.Rows + args.ChunkRows - 1) / args.ChunkRows;
        int tiles = (n + TileColumns - 1) / TileColumns;
        long dbPlane = (long)n * r, dsPlane = (long)args.Rows * r;
        for (int item = Grid.IdxX; item < chunks * args.Splits; item += Grid.DimX)
        {
            int chunk = item / args.Splits, split = item - chunk * args.Splits;
            int m0 = chunk * args.ChunkRows;
            int m1 = m0 + args.ChunkRows < args.Rows ? m0 + args.ChunkRows : args.Rows;
            int t0 = split * args.TilesPerSplit;
            int t1 = t0 + args.TilesPerSplit < tiles ? t0 + args.TilesPerSplit : tiles;
            for (int e = tid; e < (m1 - m0) * r; e += g) dsAcc[e] = 0f;
            for (int t = t0; t < t1; t++)
            {
                int n0 = t * TileColumns;
                Group.Barrier(); // bTile and dsAcc: the previous tile's readers and the zeroing are done
                for (int e = tid; e < TileColumns * r; e += g)
                {
                    int c = e / r, j = e - c * r;
                    bTile[e] = n0 + c < n ? default(TConvert).ToFloat(args.B[(long)(n0 + c) * r + j]) : 0f;
                    dbAcc[e] = 0f;
                }
                bool whole = args.Vector != 0 && n0 + TileColumns <= n;
                for (int mb = m0; mb < m1; mb += BlockRows)
                {
                    Group.Barrier(); // the previous block's yBlock and sBlock are consumed
                    for (int e = tid; e < BlockRows * perRow; e += g)
                    {
                        int rr = e / perRow, v = e - rr * perRow, m = mb + rr, c0 = v * lanes;
                        long at = (long)m * n + n0 + c0;
                        if (whole && m < m1)
                        {
                            default(TWide).Spread(args.Dy.Cast<UInt4>()[at / lanes], yBlock, rr * TileColumns + c0);
                        }
                        else
                        {
                            for (int q = 0; q < lanes; q++)
                                yBlock[rr * TileColumns + c0 + q] = m < m1 && n0 + c0 + q < n ? default(TConvert).ToFloat(args.Dy[at + q]) : 0f;
                        }
                    }
                    for (int e = tid; e < BlockRows * r; e += g)
                    {
                        int rr = e / r, j = e - rr * r;
                        sBlock[e] = mb + rr < m1 ? args.S[(long)(mb + rr) * r + j] : 0f;
                    }
                    Group.Barrier();
                    // dB tile += dY blockᵀ·S block (rows past the chunk are zeros).
                    for (int e = tid; e < TileColumns * r; e += g)
                    {
                        int c = e / r, j = e - c * r;
                        float sum = dbAcc[e];
                        for (int rr = 0; rr < BlockRows; rr++) sum += yBlock[rr * TileColumns + c] * sBlock[rr * r + j];
                        dbAcc[e] = sum;
                    }
                    // dS rows += dY block·B tile (columns past N are zeros).
                    int live = m1 - mb < BlockRows ? m1 - mb : BlockRows;
                    for (int e = tid; e < live * r; e += g)
                    {
                        int rr = e / r, j = e - rr * r;
                        int at = (mb - m0 + rr) * r + j;
                        float sum = dsAcc[at];
                        for (int c = 0; c < TileColumns; c++) sum += yBlock[rr * TileColumns + c] * bTile[c * r + j];
                        dsAcc[at] = sum;
                    }
                }
                // Each dbAcc element was accumulated by this same thread: no barrier needed before the store.
                for (int e = tid; e < TileColumns * r; e += g)
                {
                    int c = e / r, j = e - c * r;
                    if (n0 + c < n) args.Db[chunk * dbPlane + (long)(n0 + c) * r + j] = dbAcc[e] * args.Alpha;
                }
            }
            Group.Barrier(); // dsAcc rows were accumulated under another thread mapping
            for (int e = tid; e < (m1 - m0) * r; e += g)
                args.Ds[split * dsPlane + (long)m0 * r + e] = dsAcc[e] * args.Alpha;
            Group.Barrier(); // the next item zeroes dsAcc
        }
    }
}

/// <summary>
/// One 16-byte vector of dY spread into f32 shared memory: four f32 or eight 16-bit values. Struct-generic, so the
/// sweep is specialized per element type at compile time.
/// </summary>
internal interface IWideLoad
{
    /// <summary>Elements per 16-byte vector.</summary>
    int Lanes { get; }

    /// <summary>Writes the <see cref="Lanes"/> values of <paramref name="v"/> to dst[at…].</summary>
    void Spread(UInt4 v, ArrayView<float> dst, int at);
}

/// <summary>Four f32 lanes.</summary>
internal readonly struct F32Wide : IWideLoad
{
    public int Lanes => 4;

    public void Spread(UInt4 v, ArrayView<float> dst, int at)
    {
        dst[at] = Interop.IntAsFloat(v.X);
        dst[at + 1] = Interop.IntAsFloat(v.Y);
        dst[at + 2] = Interop.IntAsFloat(v.Z);
        dst[at + 3] = Interop.IntAsFloat(v.W);
    }
}

/// <summary>Eight 16-bit lanes (fp16 or bf16 through <typeparamref name="TWord"/>).</summary>
internal readonly struct HalfWide<T, TWord> : IWideLoad where T : unmanaged where TWord : struct, IHalfWord<T>
{
    public int Lanes => 8;

    public void Spread(UInt4 v, ArrayView<float> dst, int at)
    {
        dst[at] = default(TWord).Widen(v.X);
        dst[at + 1] = default(TWord).Widen(v.X >> 16);
        dst[at + 2] = default(TWord).Widen(v.Y);
        dst[at + 3] = default(TWord).Widen(v.Y >> 16);
        dst[at + 4] = default(TWord).Widen(v.Z);
        dst[at + 5] = default(TWord).Widen(v.Z >> 16);
        dst[at + 6] = default(TWord).Widen(v.W);
        dst[at + 7] = default(TWord).Widen(v.W >> 16);
    }
}
