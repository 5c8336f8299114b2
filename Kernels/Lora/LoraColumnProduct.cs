using ILGPU;
using ILGPU.Runtime;
using Kernels.Engine;
using Kernels.Runtime;
using Kernels.Tensors;

namespace Kernels.Lora;

/// <summary>
/// The rank-space reductions over tokens of the LoRA backward: dA = dSᵀ·drop(X) (r×K, the mask regenerated from the
/// seed while X is staged) and dB = α·dYᵀ·S (N×r). Both are out(j, c) = scale·Σ_m P[m, j]·Q(m, c) with a small f32
/// P (M×r) and a wide 16/32-bit Q (M×L). The token axis is cut into fixed chunks of <see cref="ChunkRows"/> rows;
/// each group owns (32 columns × one chunk), walks the chunk 32 rows at a time through shared memory, and writes its
/// partial plane; <see cref="SumChunksKernel"/> then adds the planes in chunk order. No atomics, and the chunking
/// depends only on M, so results are bit-identical from run to run and across devices of one kind.
/// </summary>
internal static class LoraColumnProduct
{
    /// <summary>Token rows per split-M chunk (fixed, so the summation order depends on the shape only).</summary>
    public const int ChunkRows = 512;

    private const int BlockColumns = 32;
    private const int BlockRows = 32;
    private const int MaxRank = LoraAdapterSet<float>.MaxSupportedRank;

    /// <summary>Arguments of <see cref="Kernel{T, TConvert}"/>.</summary>
    public readonly struct Args<T> where T : unmanaged
    {
        public readonly ArrayView<float> Left;
        public readonly int LeftStride;
        public readonly ArrayView<T> Right;
        public readonly int Rows;
        public readonly int Columns;
        public readonly int Rank;
        public readonly LoraDropout Dropout;
        public readonly float Scale;
        /// <summary>0: out[j·L + c] (dA, r×K); 1: out[c·r + j] (dB, N×r).</summary>
        public readonly int OutputTransposed;
        /// <summary>Chunks·r·L floats: plane c at c·r·L.</summary>
        public readonly ArrayView<float> Output;

        public Args(ArrayView<float> left, int leftStride, ArrayView<T> right, int rows, int columns, int rank,
            LoraDropout dropout, float scale, int outputTransposed, ArrayView<float> output)
        {
            Left = left; LeftStride = leftStride; Right = right; Rows = rows; Columns = columns; Rank = rank;
            Dropout = dropout; Scale = scale; OutputTransposed = outputTransposed; Output = output;
        }
    }

    /// <summary>Number of split-M chunks for <paramref name="rows"/> tokens.</summary>
    public static int Chunks(int rows) => (rows + ChunkRows - 1) / ChunkRows;

    /// <summary>
    /// Enqueues out = scale·Pᵀ·Q into <paramref name="destination"/> (r·L floats): directly when M fits one chunk,
    /// else through Chunks·r·L floats of the engine's scratch buffer (<see cref="SplitKWorkspace"/>) and the ordered
    /// reduction.
    /// </summary>
    public static void Launch<T, TConvert>(ComputeDevice device, Args<T> args, ArrayView<float> destination)
        where T : unmanaged where TConvert : struct, IElementConverter<T>
    {
        int chunks = Chunks(args.Rows);
        long plane = (long)args.Rank * args.Columns;
        using var lease = chunks == 1 ? default : SplitKWorkspace.Rent(device, chunks * plane);
        var target = chunks == 1 ? destination : lease.View;
        args = new Args<T>(args.Left, args.LeftStride, args.Right, args.Rows, args.Columns, args.Rank, args.Dropout,
            args.Scale, args.OutputTransposed, target);
        var kernel = device.GetKernel((typeof(LoraColumnProduct), typeof(T)), acc => acc.LoadCatalogKernel<Args<T>>(Kernel<T, TConvert>));
        int group = LoraRowProduct.GroupSize(device);
        long items = (long)((args.Columns + BlockColumns - 1) / BlockColumns) * chunks;
        kernel(device.Stream, new KernelConfig(device.GroupsFor(items * group, group), group), args);
        if (chunks > 1) SumChunks(device, target, chunks, plane, destination);
    }

    /// <summary>Enqueues destination[i] = Σ_c partials[c·plane + i], added in plane order.</summary>
    public static void SumChunks(ComputeDevice device, ArrayView<float> partials, int chunks, long plane, ArrayView<float> destination)
    {
        var sum = device.GetKernel((typeof(LoraColumnProduct), "sum"),
            acc => acc.LoadCatalogKernel<ArrayView<float>, int, long, ArrayView<float>>(SumChunksKernel));
        int g = device.ElementwiseGroupSize;
        sum(device.Stream, new KernelConfig(device.GroupsFor(plane, g), g), partials, chunks, plane, destination);
    }

    /// <summary>The partial-plane kernel (grid-stride over column blocks × chunks).</summary>
    public static void Kernel<T, TConvert>(Args<T> args) where T : unmanaged where TConvert : struct, IElementConverter<T>
    {
        var q = SharedMemory.Allocate<float>(BlockRows * BlockColumns);
        var p = SharedMemory.Allocate<float>(BlockRows * MaxRank);
        var acc = SharedMemory.Allocate<float>(MaxRank * BlockColumns);
        int g = Group.DimX, tid = Group.IdxX;
        int blocks = (args.Columns + BlockColumns - 1) / BlockColumns;
        int chunks = (args.Rows + ChunkRows - 1) / ChunkRows;
        int pairs = args.Rank * BlockColumns;
        long plane = (long)args.Rank * args.Columns;
        for (int item = Grid.IdxX; item < blocks * chunks; item += Grid.DimX)
        {
            int block = item % blocks, chunk = item / blocks;
            int c0 = block * BlockColumns, m0 = chunk * ChunkRows;
            int m1 = m0 + ChunkRows < args.Rows ? m0 + ChunkRows : args.Rows;
            for (int i = tid; i < pairs; i += g) acc[i] = 0f;
            for (int mb = m0; mb < m1; mb += BlockRows)
            {
                Group.Barrier();
                for (int e = tid; e < BlockRows * BlockColumns; e += g)
                {
                    int m = mb + e / BlockColumns, c = c0 + e % BlockColumns;
                    float v = 0f;
                    if (m < m1 && c < args.Columns)
                    {
                        long index = (long)m * args.Columns + c;
                        v = default(TConvert).ToFloat(args.Right[index]) * args.Dropout.Factor(index);
                    }
                    q[e] = v;
                }
                for (int e = tid; e < BlockRows * args.Rank; e += g)
                {
                    int rr = e / args.Rank, j = e - rr * args.Rank, m = mb + rr;
                    p[rr * MaxRank + j] = m < m1 ? args.Left[(long)m * args.LeftStride + j] : 0f;
                }
                Group.Barrier();
                for (int i = tid; i < pairs; i += g)
                {
                    int j = i / BlockColumns, c = i - j * BlockColumns;
                    float sum = acc[i];
                    for (int rr = 0; rr < BlockRows; rr++) sum += p[rr * MaxRank + j] * q[rr * BlockColumns + c];
                    acc[i] = sum;
                }
            }
            for (int i = tid; i < pairs; i += g)
            {
                int j = i / BlockColumns, c = c0 + i - j * BlockColumns;
                if (c >= args.Columns) continue;
                long o = args.OutputTransposed != 0 ? (long)c * args.Rank + j : (long)j * args.Columns + c;
                args.Output[chunk * plane + o] = acc[i] * args.Scale;
            }
        }
    }

    /// <summary>output[i] = Σ_c partials[c·plane + i], c = 0, 1, … in order (grid-stride).</summary>
    public static void SumChunksKernel(ArrayView<float> partials, int chunks, long plane, ArrayView<float> output)
    {
        for (long i = Grid.GlobalIndex.X; i < plane; i += (long)Grid.DimX * Group.DimX)
        {
            float sum = 0f;
            for (int c = 0; c < chunks; c++) sum += partials[c * plane + i];
            output[i] = sum;
        }
    }
}
