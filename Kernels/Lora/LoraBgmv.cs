using ILGPU;
using ILGPU.Runtime;
using Kernels.Runtime;
using Kernels.Tensors;

namespace Kernels.Lora;

/// <summary>
/// Punica's BGMV for decode: y[m] += α_a·(x[m]·A_aᵀ)·B_aᵀ with a = the row's adapter (−1: the row is left as is).
/// One group per token row: the shrink accumulates in shared memory (<see cref="LoraRowProduct.Accumulate{T, TConvert}"/>),
/// then the group expands over all N outputs. The rank-space vector never leaves the group.
/// </summary>
internal static class LoraBgmv
{
    /// <summary>Arguments of <see cref="Kernel{T, TConvert}"/>.</summary>
    public readonly struct Args<T> where T : unmanaged
    {
        public readonly ArrayView<T> X;
        public readonly int Rows;
        public readonly int K;
        public readonly int N;
        public readonly ArrayView<T> APool;
        public readonly ArrayView<T> BPool;
        public readonly ArrayView<T> Y;

        public Args(ArrayView<T> x, int rows, int k, int n, ArrayView<T> aPool, ArrayView<T> bPool, ArrayView<T> y)
        {
            X = x; Rows = rows; K = k; N = n; APool = aPool; BPool = bPool; Y = y;
        }
    }

    /// <summary>Enqueues the kernel.</summary>
    public static void Launch<T, TConvert>(ComputeDevice device, in Args<T> args, in PooledLoraAdapters map)
        where T : unmanaged where TConvert : struct, IElementConverter<T>
    {
        var kernel = device.GetKernel((typeof(LoraBgmv), typeof(T)), acc => acc.LoadCatalogKernel<Args<T>, PooledLoraAdapters>(Kernel<T, TConvert>));
        int group = LoraRowProduct.GroupSize(device);
        kernel(device.Stream, new KernelConfig(device.GroupsFor((long)args.Rows * group, group), group), args, map);
    }

    /// <summary>The kernel (grid-stride over token rows).</summary>
    public static void Kernel<T, TConvert>(Args<T> args, PooledLoraAdapters map) where T : unmanaged where TConvert : struct, IElementConverter<T>
    {
        var staged = SharedMemory.Allocate<float>(LoraRowProduct.MaxGroupSize);
        var partial = SharedMemory.Allocate<float>(LoraRowProduct.MaxGroupSize);
        var s = SharedMemory.Allocate<float>(LoraAdapterSet<float>.MaxSupportedRank);
        int tid = Group.IdxX, g = Group.DimX;
        for (int row = Grid.IdxX; row < args.Rows; row += Grid.DimX)
        {
            int a = map.AdapterOf(row);
            if (a < 0) continue; // uniform over the group: the whole group skips the row
            int rank = map.Rank(a);
            int slices = LoraRowProduct.Accumulate<T, TConvert>(args.X, row, 1, args.K, args.APool, 0, map.AOffset(a), rank,
                default, staged, partial);
            for (int j = tid; j < rank; j += g)
            {
                float v = 0f;
                for (int sl = 0; sl < slices; sl++) v += partial[j * slices + sl];
                s[j] = v;
            }
            Group.Barrier();
            float scale = map.Scale(a);
            long bOffset = map.BOffset(a);
            for (int n = tid; n < args.N; n += g)
            {
                float v = 0f;
                for (int j = 0; j < rank; j++) v += s[j] * default(TConvert).ToFloat(args.BPool[bOffset + (long)n * rank + j]);
                long o = (long)row * args.N + n;
                args.Y[o] = default(TConvert).FromFloat(default(TConvert).ToFloat(args.Y[o]) + scale * v);
            }
            Group.Barrier();
        }
    }
}
