using ILGPU;
using ILGPU.Runtime;
using Kernels.Cuda;
using Kernels.Cuda.Primitives;
using Kernels.Runtime;

namespace Kernels.Engine;

/// <summary>
/// The one tensor-core GEMM mainloop of the library (DESIGN.md §2): per 64-wide K step a producer fills the weight
/// tile, the activations arrive by <c>cp.async</c>, both in swizzled shared tiles, double-buffered; each warp reads
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
                var kernel = acc.LoadKernel<TProducer, Matrix16, TEpilogue, GemmProblem>(Kernel<TShape, TMma, TProducer, TEpilogue>);
                int bytes = SharedBytes<TShape>(device);
                // Above the 48 KB default a CUDA kernel must opt in once (research/ilgpu.md §5).
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
        var shared = SharedMemory.GetDynamic<uint>();
        var scratch = new WarpScratch(shared);
        int tileM = default(TShape).WarpsM * TileEngineConstants.WarpTileM;
        int tileN = default(TShape).WarpsN * TileEngineConstants.WarpTileN;
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
        int wm = warp % default(TShape).WarpsM, wn = warp / default(TShape).WarpsM;
        bool endPhase = producer.HasEndPhase;

        var f00 = new MmaFragment();
        var f01 = new MmaFragment();
        var f10 = new MmaFragment();
        var f11 = new MmaFragment();

        if (steps > 0)
        {
            // Prologue: stage 0.
            var first = new WeightTileRequest(shared, 0, m0, tileM, kBegin * TileEngineConstants.TileK, kBegin, thread);
            producer.Begin(first);
            TileCopy.Load(activations, shared, tileM * TileEngineConstants.RowBytes, tileN, n0, first.K0, thread);
            CpAsync.CommitGroup();
            if (endPhase)
            {
                Group.Barrier();
                producer.End(first);
            }
            CpAsync.WaitAll();
            Group.Barrier();

            for (int s = 0; s < steps; s++)
            {
                int current = (s & 1) * stageBytes;
                int next = ((s + 1) & 1) * stageBytes;
                bool more = s + 1 < steps;
                var request = new WeightTileRequest(shared, next, m0, tileM,
                    (kBegin + s + 1) * TileEngineConstants.TileK, kBegin + s + 1, thread);
                if (more)
                {
                    producer.Begin(request);
                    TileCopy.Load(activations, shared, next + tileM * TileEngineConstants.RowBytes, tileN, n0, request.K0, thread);
                    CpAsync.CommitGroup();
                }

                int aBase = current, bBase = current + tileM * TileEngineConstants.RowBytes;
                for (int kk = 0; kk < 4; kk++)
                {
                    int ra = wm * TileEngineConstants.WarpTileM + (lane & 15);
                    int ca = kk * 2 + (lane >> 4);
                    LdMatrix.X4(shared, aBase + SwizzledTile.ChunkByteOffset(ra, ca), out uint a00, out uint a01, out uint a02, out uint a03, scratch);
                    LdMatrix.X4(shared, aBase + SwizzledTile.ChunkByteOffset(ra + 16, ca), out uint a10, out uint a11, out uint a12, out uint a13, scratch);
                    int rb = wn * TileEngineConstants.WarpTileN + (lane & 7) + ((lane >> 4) << 3);
                    int cb = kk * 2 + ((lane >> 3) & 1);
                    LdMatrix.X4(shared, bBase + SwizzledTile.ChunkByteOffset(rb, cb), out uint b00, out uint b01, out uint b10, out uint b11, scratch);
                    f00 = default(TMma).Multiply(f00, a00, a01, a02, a03, b00, b01, scratch);
                    f01 = default(TMma).Multiply(f01, a00, a01, a02, a03, b10, b11, scratch);
                    f10 = default(TMma).Multiply(f10, a10, a11, a12, a13, b00, b01, scratch);
                    f11 = default(TMma).Multiply(f11, a10, a11, a12, a13, b10, b11, scratch);
                }

                if (endPhase)
                {
                    Group.Barrier();
                    if (more) producer.End(request);
                }
                CpAsync.WaitAll();
                Group.Barrier();
            }
        }

        int row = m0 + wm * TileEngineConstants.WarpTileM + MmaFragment.RowOf(lane);
        int col = n0 + wn * TileEngineConstants.WarpTileN + MmaFragment.ColumnOf(lane);
        Finish(ref epilogue, problem, split, row, col, f00);
        Finish(ref epilogue, problem, split, row, col + 8, f01);
        Finish(ref epilogue, problem, split, row + 16, col, f10);
        Finish(ref epilogue, problem, split, row + 16, col + 8, f11);
    }

    private static void Finish<TEpilogue>(ref TEpilogue epilogue, in GemmProblem problem, int split, int m, int n, MmaFragment f)
        where TEpilogue : struct, ITileEpilogue
    {
        bool n0 = n < problem.N, n1 = n + 1 < problem.N;
        if (m < problem.M)
        {
            if (n0) epilogue.Store(split, m, n, f.C0);
            if (n1) epilogue.Store(split, m, n + 1, f.C1);
        }
        if (m + 8 < problem.M)
        {
            if (n0) epilogue.Store(split, m + 8, n, f.C2);
            if (n1) epilogue.Store(split, m + 8, n + 1, f.C3);
        }
    }

    private static int XMin(int a, int b) => a < b ? a : b;
}
