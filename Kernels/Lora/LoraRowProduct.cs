using ILGPU;
using ILGPU.Runtime;
using Kernels.Runtime;
using Kernels.Tensors;

namespace Kernels.Lora;

/// <summary>
/// The rank-space product of one token row with an adapter factor: out[m, j] = c·Σ_t in(m, t)·E_a(j, t) for
/// j &lt; r_a, where a is row m's adapter. It is LoRA's shrink S = drop(X)·Aᵀ (E = A, r×K, with the dropout mask
/// applied as X is staged, once per element) and the backward's dS = α·dY·B (E = B read as its transpose, c = α).
/// Columns j ≥ r_a of the output row, and rows without an adapter, are written as zeros. r ≤ 128 is small, so this
/// is a plain kernel rather than a tensor-core GEMM: each group owns a tile of 8 rows at a time (so each element of
/// the factor is loaded once per tile, not once per row), stages 256-column chunks of them in shared memory, and
/// splits the chunk over (j, slice) threads whose partial sums are added in slice order at the end (deterministic,
/// no atomics).
/// </summary>
internal static class LoraRowProduct
{
    /// <summary>Largest group size the kernels' shared arrays allow.</summary>
    public const int MaxGroupSize = 256;

    /// <summary>Arguments of <see cref="Kernel{T, TConvert, TMap}"/>.</summary>
    public readonly struct Args<T> where T : unmanaged
    {
        public readonly ArrayView<T> Input;
        public readonly int Rows;
        public readonly int Length;
        public readonly ArrayView<T> Factors;
        /// <summary>0: E(j, t) at offset + j·Length + t (A, r×K); 1: at offset + t·r + j (B, N×r, read transposed).</summary>
        public readonly int FactorsTransposed;
        /// <summary>1 to multiply each row's result by its adapter's α.</summary>
        public readonly int ApplyScale;
        public readonly LoraDropout Dropout;
        public readonly ArrayView<float> Output;
        public readonly int OutputStride;

        public Args(ArrayView<T> input, int rows, int length, ArrayView<T> factors, int factorsTransposed, int applyScale,
            LoraDropout dropout, ArrayView<float> output, int outputStride)
        {
            Input = input; Rows = rows; Length = length; Factors = factors; FactorsTransposed = factorsTransposed;
            ApplyScale = applyScale; Dropout = dropout; Output = output; OutputStride = outputStride;
        }
    }

    /// <summary>Enqueues the kernel over all rows of <paramref name="args"/>.</summary>
    public static void Launch<T, TConvert, TMap>(ComputeDevice device, in Args<T> args, in TMap map)
        where T : unmanaged where TConvert : struct, IElementConverter<T> where TMap : struct, ILoraAdapterMap
    {
        var kernel = device.GetKernel((typeof(LoraRowProduct), typeof(T), typeof(TMap)),
            acc => acc.LoadCatalogKernel<Args<T>, TMap>(Kernel<T, TConvert, TMap>));
        int group = GroupSize(device);
        kernel(device.Stream, new KernelConfig(device.GroupsFor((long)args.Rows * group, group), group), args, map);
    }

    /// <summary>
    /// Threads per group: 256 on a GPU; 4 on the CPU accelerator, whose group threads are OS threads that meet at
    /// every barrier (the kernels are correct for any group size up to <see cref="MaxGroupSize"/>).
    /// </summary>
    public static int GroupSize(ComputeDevice device) => device.IsCuda ? MaxGroupSize : Math.Min(4, device.Accelerator.WarpSize);

    /// <summary>Token rows a group takes at a time: A (or B) is read once per tile instead of once per row.</summary>
    public const int RowsPerTile = 8;

    /// <summary>
    /// The kernel (grid-stride over tiles of <see cref="RowsPerTile"/> rows). A tile whose rows share one adapter (every
    /// tile of a single-adapter call, all but segment-boundary tiles of a batch) is accumulated in one pass; a mixed
    /// tile row by row. Each row's sums are formed in the same order either way, so S does not depend on the tiling.
    /// </summary>
    public static void Kernel<T, TConvert, TMap>(Args<T> args, TMap map)
        where T : unmanaged where TConvert : struct, IElementConverter<T> where TMap : struct, ILoraAdapterMap
    {
        var staged = SharedMemory.Allocate<float>(RowsPerTile * MaxGroupSize);
        var partial = SharedMemory.Allocate<float>(RowsPerTile * MaxGroupSize);
        int tiles = (args.Rows + RowsPerTile - 1) / RowsPerTile;
        for (int tile = Grid.IdxX; tile < tiles; tile += Grid.DimX)
        {
            int row0 = tile * RowsPerTile;
            int count = Min(RowsPerTile, args.Rows - row0);
            int a = map.AdapterOf(row0);
            bool uniform = true;
            for (int i = 1; i < count; i++) uniform &= map.AdapterOf(row0 + i) == a;
            if (uniform)
            {
                RowsOut<T, TConvert, TMap>(args, map, row0, count, a, staged, partial);
            }
            else
            {
                for (int i = 0; i < count; i++)
                    RowsOut<T, TConvert, TMap>(args, map, row0 + i, 1, map.AdapterOf(row0 + i), staged, partial);
            }
        }
    }

    /// <summary>Accumulates and writes <paramref name="count"/> consecutive rows that use adapter <paramref name="a"/>.</summary>
    private static void RowsOut<T, TConvert, TMap>(in Args<T> args, in TMap map, int row0, int count, int a,
        ArrayView<float> staged, ArrayView<float> partial)
        where T : unmanaged where TConvert : struct, IElementConverter<T> where TMap : struct, ILoraAdapterMap
    {
        int tid = Group.IdxX;
        int rank = a >= 0 ? map.Rank(a) : 0;
        int slices = Accumulate<T, TConvert>(args.Input, row0, count, args.Length, args.Factors, args.FactorsTransposed,
            a >= 0 ? (args.FactorsTransposed != 0 ? map.BOffset(a) : map.AOffset(a)) : 0L, rank, args.Dropout, staged, partial);
        float scale = args.ApplyScale != 0 && rank > 0 ? map.Scale(a) : 1f;
        for (int e = tid; e < count * args.OutputStride; e += Group.DimX)
        {
            int rr = e / args.OutputStride, j = e - rr * args.OutputStride;
            float v = 0f;
            for (int s = 0; j < rank && s < slices; s++) v += partial[rr * MaxGroupSize + j * slices + s];
            args.Output[(long)(row0 + rr) * args.OutputStride + j] = v * scale;
        }
        Group.Barrier();
    }

    /// <summary>
    /// Accumulates the products of rows row0…row0+count−1 (count ≤ <see cref="RowsPerTile"/>, all with the same
    /// factor E) into <paramref name="partial"/>[rr·256 + j·slices + slice] and returns slices (partials of one j are
    /// added in slice order by the caller). <paramref name="staged"/> and <paramref name="partial"/> hold count·256
    /// floats. Called by the whole group; ends with a barrier. <paramref name="rank"/> = 0 (no adapter) does nothing
    /// but the barrier.
    /// </summary>
    public static int Accumulate<T, TConvert>(ArrayView<T> input, int row0, int count, int length, ArrayView<T> factors, int transposed,
        long offset, int rank, LoraDropout dropout, ArrayView<float> staged, ArrayView<float> partial)
        where T : unmanaged where TConvert : struct, IElementConverter<T>
    {
        int g = Group.DimX, tid = Group.IdxX;
        int slices = rank > 0 ? Max(1, g / rank) : 1;
        int pairs = rank * slices;
        for (int e = tid; e < count * MaxGroupSize; e += g) partial[e] = 0f;
        // Chunks of MaxGroupSize columns whatever the group size: one barrier pair per chunk.
        for (int t0 = 0; rank > 0 && t0 < length; t0 += MaxGroupSize)
        {
            Group.Barrier();
            int n = Min(MaxGroupSize, length - t0);
            for (int e = tid; e < count * MaxGroupSize; e += g)
            {
                int rr = e / MaxGroupSize, c = e - rr * MaxGroupSize;
                long index = (long)(row0 + rr) * length + t0 + c;
                staged[e] = c < n ? default(TConvert).ToFloat(input[index]) * dropout.Factor(index) : 0f;
            }
            Group.Barrier();
            for (int p = tid; p < pairs; p += g)
            {
                int j = p / slices, s = p - j * slices;
                long e0 = transposed != 0 ? offset + (long)t0 * rank + j : offset + (long)j * length + t0;
                long step = transposed != 0 ? rank : 1;
                if (count == 1)
                {
                    float sum = partial[p];
                    for (int c = s; c < n; c += slices) sum += staged[c] * default(TConvert).ToFloat(factors[e0 + c * step]);
                    partial[p] = sum;
                }
                else
                {
                    // Eight rows against one load of E; rows ≥ count are staged as zeros and never read back.
                    float s0 = partial[p], s1 = partial[MaxGroupSize + p];
                    float s2 = count > 2 ? partial[2 * MaxGroupSize + p] : 0f, s3 = count > 3 ? partial[3 * MaxGroupSize + p] : 0f;
                    float s4 = count > 4 ? partial[4 * MaxGroupSize + p] : 0f, s5 = count > 5 ? partial[5 * MaxGroupSize + p] : 0f;
                    float s6 = count > 6 ? partial[6 * MaxGroupSize + p] : 0f, s7 = count > 7 ? partial[7 * MaxGroupSize + p] : 0f;
                    for (int c = s; c < n; c += slices)
                    {
                        float f = default(TConvert).ToFloat(factors[e0 + c * step]);
                        s0 += StagedAt(staged, count, 0, c) * f;
                        s1 += StagedAt(staged, count, 1, c) * f;
                        s2 += StagedAt(staged, count, 2, c) * f;
                        s3 += StagedAt(staged, count, 3, c) * f;
                        s4 += StagedAt(staged, count, 4, c) * f;
                        s5 += StagedAt(staged, count, 5, c) * f;
                        s6 += StagedAt(staged, count, 6, c) * f;
                        s7 += StagedAt(staged, count, 7, c) * f;
                    }
                    partial[p] = s0;
                    partial[MaxGroupSize + p] = s1;
                    if (count > 2) partial[2 * MaxGroupSize + p] = s2;
                    if (count > 3) partial[3 * MaxGroupSize + p] = s3;
                    if (count > 4) partial[4 * MaxGroupSize + p] = s4;
                    if (count > 5) partial[5 * MaxGroupSize + p] = s5;
                    if (count > 6) partial[6 * MaxGroupSize + p] = s6;
                    if (count > 7) partial[7 * MaxGroupSize + p] = s7;
                }
            }
        }
        Group.Barrier();
        return slices;
    }

    /// <summary>staged[rr·256 + c] for rows that exist in the tile, 0 for the others (no out-of-range read).</summary>
    private static float StagedAt(ArrayView<float> staged, int count, int rr, int c) => rr < count ? staged[rr * MaxGroupSize + c] : 0f;

    private static int Max(int a, int b) => a > b ? a : b;

    private static int Min(int a, int b) => a < b ? a : b;
}
