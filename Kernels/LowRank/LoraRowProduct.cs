using ILGPU;
using ILGPU.Runtime;
using Kernels.Runtime;
using Kernels.Tensors;

namespace Kernels.LowRank;

/// <summary>
/// The rank-space product of one token row with an adapter factor: out[m, j] = c·Σ_t in(m, t)·E_a(j, t) for
/// j &lt; r_a, where a is row m's adapter. It is LoRA's shrink S = drop(X)·Aᵀ (E = A, r×K, with the dropout mask
/// applied as X is staged, once per element) and the backward's dS = α·dY·B (E = B read as its transpose, c = α).
/// Columns j ≥ r_a of the output row, and rows without an adapter, are written as zeros. r ≤ 128 is small, so this
/// is a plain kernel rather than a tensor-core GEMM: each group owns one row at a time, stages 256-element chunks of
/// it in shared memory, and splits the chunk over (j, slice) threads whose partial sums are added in slice order at
/// the end (deterministic, no atomics).
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
            acc => acc.LoadKernel<Args<T>, TMap>(Kernel<T, TConvert, TMap>));
        int group = GroupSize(device);
        kernel(device.Stream, new KernelConfig(device.GroupsFor((long)args.Rows * group, group), group), args, map);
    }

    /// <summary>
    /// Threads per group: 256 on a GPU; 4 on the CPU accelerator, whose group threads are OS threads that meet at
    /// every barrier (the kernels are correct for any group size up to <see cref="MaxGroupSize"/>).
    /// </summary>
    public static int GroupSize(ComputeDevice device) => device.IsCuda ? MaxGroupSize : Math.Min(4, device.Accelerator.WarpSize);

    /// <summary>The kernel (grid-stride over rows; one row per group at a time).</summary>
    public static void Kernel<T, TConvert, TMap>(Args<T> args, TMap map)
        where T : unmanaged where TConvert : struct, IElementConverter<T> where TMap : struct, ILoraAdapterMap
    {
        var staged = SharedMemory.Allocate<float>(MaxGroupSize);
        var partial = SharedMemory.Allocate<float>(MaxGroupSize);
        int tid = Group.IdxX;
        for (int row = Grid.IdxX; row < args.Rows; row += Grid.DimX)
        {
            int a = map.AdapterOf(row);
            int rank = a >= 0 ? map.Rank(a) : 0;
            int slices = Accumulate<T, TConvert>(args.Input, row, args.Length, args.Factors, args.FactorsTransposed,
                a >= 0 ? (args.FactorsTransposed != 0 ? map.BOffset(a) : map.AOffset(a)) : 0L, rank, args.Dropout, staged, partial);
            float scale = args.ApplyScale != 0 && rank > 0 ? map.Scale(a) : 1f;
            for (int j = tid; j < args.OutputStride; j += Group.DimX)
            {
                float v = 0f;
                for (int s = 0; j < rank && s < slices; s++) v += partial[j * slices + s];
                args.Output[(long)row * args.OutputStride + j] = v * scale;
            }
            Group.Barrier();
        }
    }

    /// <summary>
    /// Accumulates row <paramref name="row"/>'s product with E into <paramref name="partial"/>[j·slices + slice] and
    /// returns slices (partials of one j are added in slice order by the caller). Called by the whole group; ends
    /// with a barrier. <paramref name="rank"/> = 0 (no adapter) does nothing but the barrier.
    /// </summary>
    public static int Accumulate<T, TConvert>(ArrayView<T> input, int row, int length, ArrayView<T> factors, int transposed,
        long offset, int rank, LoraDropout dropout, ArrayView<float> staged, ArrayView<float> partial)
        where T : unmanaged where TConvert : struct, IElementConverter<T>
    {
        int g = Group.DimX, tid = Group.IdxX;
        int slices = rank > 0 ? Max(1, g / rank) : 1;
        int pairs = rank * slices;
        for (int p = tid; p < pairs; p += g) partial[p] = 0f;
        long rowBase = (long)row * length;
        // Chunks of MaxGroupSize elements whatever the group size: one barrier pair per chunk.
        for (int t0 = 0; rank > 0 && t0 < length; t0 += MaxGroupSize)
        {
            Group.Barrier();
            int n = Min(MaxGroupSize, length - t0);
            for (int c = tid; c < MaxGroupSize; c += g)
            {
                float v = 0f;
                if (c < n) v = default(TConvert).ToFloat(input[rowBase + t0 + c]) * dropout.Factor(rowBase + t0 + c);
                staged[c] = v;
            }
            Group.Barrier();
            for (int p = tid; p < pairs; p += g)
            {
                int j = p / slices, s = p - j * slices;
                float sum = partial[p];
                if (transposed != 0)
                    for (int c = s; c < n; c += slices) sum += staged[c] * default(TConvert).ToFloat(factors[offset + (long)(t0 + c) * rank + j]);
                else
                    for (int c = s; c < n; c += slices) sum += staged[c] * default(TConvert).ToFloat(factors[offset + (long)j * length + t0 + c]);
                partial[p] = sum;
            }
        }
        Group.Barrier();
        return slices;
    }

    private static int Max(int a, int b) => a > b ? a : b;

    private static int Min(int a, int b) => a < b ? a : b;
}
