using ILGPU;
using ILGPU.Runtime;
using Kernels.Cuda;
using Kernels.Cuda.Primitives;
using Kernels.Runtime;

namespace Kernels.Engine;

/// <summary>
/// The one tensor-core GEMM mainloop of the library (docs/design.md §2): per 64-wide K step a producer fills the weight
/// tile, the activations arrive by <c>cp.async</c>, both in swizzled shared tiles, in a ring of
/// <see cref="ITileShape.Stages"/> buffers; each warp reads
/// fragments with <c>ldmatrix</c> and multiplies with <c>mma.sync.m16n8k16</c> into a 32×16 f32 register tile; an
/// epilogue finishes the output. Families plug in a <see cref="IWeightTileProducer"/> and an
/// <see cref="ITileEpilogue"/>; see <c>Kernels/Engine/README.md</c>.
/// </summary>
public static class TileEngine
{
    /// <summary>
    /// Enqueues the engine on <paramref name="device"/>'s stream: Y = W·Xᵀ over <paramref name="problem"/>, weights
    /// from <paramref name="producer"/>, activations from <paramref name="activations"/> (N×K, row-major 16-bit), every
    /// result through <paramref name="epilogue"/>. Asynchronous. Arguments must already be validated (an out-of-range
    /// index kills the process on the CPU accelerator).
    /// </summary>
    public static void Launch<TShape, TMma, TProducer, TEpilogue>(ComputeDevice device, in TProducer producer,
        in Matrix16 activations, in TEpilogue epilogue, in GemmProblem problem)
        where TShape : struct, ITileShape
        where TMma : struct, IMmaKind
        where TProducer : struct, IWeightTileProducer
        where TEpilogue : struct, ITileEpilogue
    {
        var kernel = Load<TShape, TMma, TProducer, TEpilogue>(device);
        int words = SharedBytes<TShape>(device) / 4;
        var config = new KernelConfig(problem.Groups, TileEngineConstants.Threads, SharedMemoryConfig.RequestDynamic<uint>(words));
        kernel(device.Stream, config, producer, activations, epilogue, problem);
    }

    /// <summary>
    /// Enqueues a whole product with the final epilogue <paramref name="final"/>: one engine launch when
    /// <paramref name="problem"/> has one split, else the engine with <see cref="SplitKPartialEpilogue"/> into the
    /// device's <see cref="SplitKWorkspace"/> followed by <see cref="SplitKReduction"/> (deterministic). The final
    /// epilogue is called once per output element, with split 0, in both cases.
    /// </summary>
    public static void Run<TShape, TMma, TProducer, TEpilogue>(ComputeDevice device, in TProducer producer,
        in Matrix16 activations, in TEpilogue final, in GemmProblem problem)
        where TShape : struct, ITileShape
        where TMma : struct, IMmaKind
        where TProducer : struct, IWeightTileProducer
        where TEpilogue : struct, ITileEpilogue
    {
        if (problem.Splits == 1)
        {
            Launch<TShape, TMma, TProducer, TEpilogue>(device, producer, activations, final, problem);
            return;
        }
        using var lease = SplitKWorkspace.Rent(device, (long)problem.Splits * problem.N * problem.M);
        var partials = lease.View;
        Launch<TShape, TMma, TProducer, SplitKPartialEpilogue>(device, producer, activations,
            new SplitKPartialEpilogue(partials, problem.M, problem.N), problem);
        SplitKReduction.Launch(device, partials, problem.Splits, problem.M, problem.N, final);
    }

    /// <summary>
    /// A split-K count for a problem planned with one split: split K until the grid covers every multiprocessor
    /// about twice, keeping at least <paramref name="minKTilesPerSplit"/> K tiles per split and at most 16 splits;
    /// 1 on the CPU accelerator, whose groups run one after another anyway.
    /// </summary>
    public static int AutoSplits(ComputeDevice device, in GemmProblem problem, int minKTilesPerSplit = 4)
    {
        ArgumentNullException.ThrowIfNull(device);
        if (!device.IsCuda) return 1;
        int tiles = problem.TilesM * problem.TilesN;
        int target = 2 * device.Facts.MultiprocessorCount;
        if (tiles >= target) return 1;
        int wanted = (target + tiles - 1) / tiles;
        return Math.Max(1, Math.Min(Math.Min(wanted, problem.KTiles / Math.Max(1, minKTilesPerSplit)), 16));
    }

    /// <summary>Registers and local bytes per thread of the engine kernel on a GPU (null on the CPU accelerator).</summary>
    public static KernelResources? Resources<TShape, TMma, TProducer, TEpilogue>(ComputeDevice device)
        where TShape : struct, ITileShape
        where TMma : struct, IMmaKind
        where TProducer : struct, IWeightTileProducer
        where TEpilogue : struct, ITileEpilogue =>
        KernelAttributes.Read(Load<TShape, TMma, TProducer, TEpilogue>(device).GetKernel());

    private static int SharedBytes<TShape>(ComputeDevice device) where TShape : struct, ITileShape =>
        TileShapes.SharedBytes<TShape>() + WarpScratch.BytesFor(device.IsCuda, TileEngineConstants.Warps);

    private static Action<AcceleratorStream, KernelConfig, TProducer, Matrix16, TEpilogue, GemmProblem> Load<TShape, TMma, TProducer, TEpilogue>(ComputeDevice device)
        where TShape : struct, ITileShape
        where TMma : struct, IMmaKind
        where TProducer : struct, IWeightTileProducer
        where TEpilogue : struct, ITileEpilogue =>
        device.GetKernel(
            (typeof(TileEngine), typeof(TShape), typeof(TMma), typeof(TProducer), typeof(TEpilogue)),
            acc =>
            {
                var kernel = acc.LoadCatalogKernel<TProducer, Matrix16, TEpilogue, GemmProblem>(Kernel<TShape, TMma, TProducer, TEpilogue>);
                int bytes = SharedBytes<TShape>(device);
                // Above the 48 KB default a CUDA kernel must opt in once (docs/ilgpu.md §5).
                if (device.IsCuda && bytes > device.Facts.SharedMemoryPerGroup)
                    KernelAttributes.RaiseDynamicSharedMemory(kernel.GetKernel(), bytes, device.Facts.SharedMemoryPerGroupOptin);
                return kernel;
            });

    /// <summary>The kernel (public so tests can compile it to PTX). Launch with <see cref="Launch{TShape,TMma,TProducer,TEpilogue}"/>.</summary>
    public static void Kernel<TShape, TMma, TProducer, TEpilogue>(TProducer producer, Matrix16 activations,
        TEpilogue epilogue, GemmProblem problem)
        where TShape : struct, ITileShape
        where TMma : struct, IMmaKind
        where TProducer : struct, IWeightTileProducer
        where TEpilogue : struct, ITileEpilogue
    {
        // A compile-time constant per shape: only one branch survives specialization.
        if (default(TShape).WarpTileM == 64)
            MainLoop<TShape, WarpTile64x32<TMma>, TProducer, TEpilogue>(producer, activations, epilogue, problem);
        else
            MainLoop<TShape, WarpTile32x16<TMma>, TProducer, TEpilogue>(producer, activations, epilogue, problem);
    }

    private static void MainLoop<TShape, TWarp, TProducer, TEpilogue>(TProducer producer, Matrix16 activations,
        TEpilogue epilogue, GemmProblem problem)
        where TShape : struct, ITileShape
        where TWarp : struct, IWarpTile
        where TProducer : struct, IWeightTileProducer
        where TEpilogue : struct, ITileEpilogue
    {
        var shared = SharedMemory.GetDynamic<uint>();
        var scratch = new WarpScratch(shared);
        uint sharedBase = SharedAddress.DynamicBase();
        int warpRows = default(TShape).WarpTileM, warpColumns = default(TShape).WarpTileN;
        int tileM = default(TShape).WarpsM * warpRows;
        int tileN = default(TShape).WarpsN * warpColumns;
        int stageBytes = (tileM + tileN) * TileEngineConstants.RowBytes;
        int thread = Group.IdxX;

        int g = Grid.IdxX;
        int tm = g % problem.TilesM;
        int rest = g / problem.TilesM;
        int tn = rest % problem.TilesN;
        int split = rest / problem.TilesN;
        int m0 = tm * tileM, n0 = tn * tileN;
        int kBegin = split * problem.KTilesPerSplit;
        int kEnd = XMin(problem.KTiles, kBegin + problem.KTilesPerSplit);
        int steps = kEnd - kBegin;

        int warp = thread >> 5, lane = thread & 31;
        int warpRow0 = (warp % default(TShape).WarpsM) * warpRows;
        int warpColumn0 = (warp / default(TShape).WarpsM) * warpColumns;
        bool endPhase = producer.HasEndPhase;
        var accumulator = default(TWarp);

        // This lane's ldmatrix rows and kk = 0 chunks (WarpTile32x16.Step's addressing, split into a row part that the
        // stage base is added to and a chunk part that each k16 step XORs; see IWarpTile.Step32).
        int weightBytes = tileM * TileEngineConstants.RowBytes;
        int ra = warpRow0 + (lane & 15);
        int rb = warpColumn0 + (lane & 7) + ((lane >> 4) << 3);
        int aRow = LoopInvariant.Pin(ra * TileEngineConstants.RowBytes);
        int bRow = LoopInvariant.Pin(weightBytes + rb * TileEngineConstants.RowBytes);
        int aChunk = LoopInvariant.Pin(((lane >> 4) ^ (ra & 7)) << 4);
        int bChunk = LoopInvariant.Pin((((lane >> 3) & 1) ^ (rb & 7)) << 4);

        if (steps > 0)
        {
            // Multistage pipeline (CUTLASS's multistage mainloop): a ring of `stages` buffers; K tile t lives in buffer
            // t mod stages and is copied stages − 1 iterations before it is multiplied. One cp.async group is committed
            // per tile slot (empty past the last tile), so "tile s has landed" is wait_group(stages − 2).
            int stages = default(TShape).Stages;
            int ring = stages * stageBytes;

            // Prologue: tiles 0 .. stages − 2. A producer with an End phase keeps per-tile state in registers, so its
            // weight tiles run one ahead (Begin(t+1) before the compute of t, End(t+1) after it), not stages − 1.
            int write = 0;
            for (int i = 0; i < stages - 1; i++)
            {
                if (i < steps)
                {
                    var request = Request(shared, write, m0, tileM, kBegin + i, thread);
                    if (!endPhase || i == 0) producer.Begin(request);
                    TileCopy.Load(activations, shared, sharedBase, write + weightBytes, tileN, n0, request.K0, thread);
                }
                CpAsync.CommitGroup();
                write = Advance(write, stageBytes, ring);
            }
            if (endPhase)
            {
                Group.Barrier();
                producer.End(Request(shared, 0, m0, tileM, kBegin, thread));
            }

            int read = 0;
            for (int s = 0; s < steps; s++)
            {
                // Tile s is in shared memory and every warp has finished tile s − 1, whose buffer is refilled below.
                CpAsync.WaitGroup(stages - 2);
                Group.Barrier();

                int t = s + stages - 1;
                if (t < steps)
                {
                    var request = Request(shared, write, m0, tileM, kBegin + t, thread);
                    if (!endPhase) producer.Begin(request);
                    TileCopy.Load(activations, shared, sharedBase, write + weightBytes, tileN, n0, request.K0, thread);
                }
                CpAsync.CommitGroup();

                int following = Advance(read, stageBytes, ring);
                bool more = s + 1 < steps;
                if (endPhase && more) producer.Begin(Request(shared, following, m0, tileM, kBegin + s + 1, thread));

                // The 64 columns as two halves of 32: a loop of two, not four k16 steps, so that each trip has 8 (skinny,
                // wide) or 32 (large) mma's on fragments that are all loaded up front.
                int a = read + aRow, b = read + bRow;
                for (int half = 0; half < 2 * HalfChunks; half += HalfChunks)
                    accumulator.Step32(shared, sharedBase, a, b, aChunk ^ half, bChunk ^ half, scratch);

                if (endPhase)
                {
                    Group.Barrier();
                    if (more) producer.End(Request(shared, following, m0, tileM, kBegin + s + 1, thread));
                }
                read = following;
                write = Advance(write, stageBytes, ring);
            }
        }

        accumulator.Finish(ref epilogue, problem, split,
            m0 + warpRow0 + MmaFragment.RowOf(lane), n0 + warpColumn0 + MmaFragment.ColumnOf(lane));
    }

    private static int XMin(int a, int b) => a < b ? a : b;

    // Byte XOR that moves a swizzled chunk offset 32 columns (4 chunks of 16 bytes) on.
    private const int HalfChunks = 64;

    // The next buffer of the ring.
    private static int Advance(int offset, int stageBytes, int ring) => offset + stageBytes == ring ? 0 : offset + stageBytes;

    private static WeightTileRequest Request(ArrayView<uint> shared, int offset, int m0, int tileM, int kTile, int thread) =>
        new(shared, offset, m0, tileM, kTile * TileEngineConstants.TileK, kTile, thread);
}
