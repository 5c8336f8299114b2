using ILGPU;
using Kernels.Tensors;

namespace Kernels.Optimizers;

/// <summary>
/// The kernels behind <see cref="PercentileClipping"/>: the squared gradient norm in an order that depends on neither
/// the device nor the launch geometry (so a shard's partials concatenate to exactly the whole parameter's), then the
/// history update and the clipping scale of bitsandbytes' <c>percentile_clipping</c>.
/// </summary>
/// <remarks>
/// The order, which <see cref="PercentileClippingReference"/> writes out on its own: (1) one partial per block of
/// <c>blockSize</c> elements, the f32 sum of the f32 squares in element order; (2) <see cref="VirtualLanes"/>
/// accumulators, accumulator j summing partials j, j + 256, j + 512, … in that order; (3) a pairwise tree over the
/// accumulators, a[j] += a[j + h] for h = 128, 64, …, 1.
/// </remarks>
internal static class GradientNormKernels
{
    /// <summary>Accumulators of the final reduction (a constant: the order must not depend on the group size).</summary>
    public const int VirtualLanes = 256;

    /// <summary>Largest group of the finishing kernel.</summary>
    public const int FinishGroupSize = 256;

    /// <summary>Output slots of the finishing kernel: the gradient scale, the gradient norm, the clip value.</summary>
    public const int ResultLength = 3;

    /// <summary>Per block, the f32 sum of squares in element order (one thread a block, grid-stride).</summary>
    internal static void SquaredNormPartials<TG, TGE>(ArrayView<TG> gradients, ArrayView<float> partials, long length, int blockSize)
        where TG : unmanaged where TGE : struct, IElementConverter<TG>
    {
        long blocks = partials.Length;
        long stride = (long)Grid.DimX * Group.DimX;
        for (long b = (long)Grid.IdxX * Group.DimX + Group.IdxX; b < blocks; b += stride)
        {
            long start = b * blockSize;
            long end = start + blockSize < length ? start + blockSize : length;
            float sum = 0f;
            for (long i = start; i < end; i++)
            {
                float g = default(TGE).ToFloat(gradients[i]);
                sum += g * g;
            }
            partials[b] = sum;
        }
    }

    /// <summary>
    /// One group: reduces the partials to ‖g‖², records it in the 100-entry history (every entry on step 1, else entry
    /// step mod 100), and writes [scale, ‖g‖, clip] where clip = √(the <paramref name="percentile"/>-th smallest
    /// history entry) and scale = clip / ‖g‖ when ‖g‖ exceeds it, else 1. A non-finite ‖g‖² is not recorded and
    /// gives scale 0 (the step drops that gradient).
    /// </summary>
    internal static void Finish(ArrayView<float> partials, ArrayView<float> history, ArrayView<float> result, long step, int percentile)
    {
        int tid = Group.IdxX, size = Group.DimX;
        var lanes = SharedMemory.Allocate<float>(VirtualLanes);
        var selected = SharedMemory.Allocate<float>(1);
        long n = partials.Length;
        for (int v = tid; v < VirtualLanes; v += size)
        {
            float acc = 0f;
            for (long j = v; j < n; j += VirtualLanes) acc += partials[j];
            lanes[v] = acc;
        }
        Group.Barrier();
        for (int h = VirtualLanes / 2; h > 0; h >>= 1)
        {
            for (int v = tid; v < h; v += size) lanes[v] += lanes[v + h];
            Group.Barrier();
        }
        float total = lanes[0];
        bool finite = UpdateGuard.IsFinite(total);
        int slot = (int)(step % PercentileClipping.HistoryLength);
        if (finite)
        {
            if (step == 1)
                for (int i = tid; i < PercentileClipping.HistoryLength; i += size) history[i] = total;
            else if (tid == 0) history[slot] = total;
        }
        Group.Barrier();
        // The percentile-th smallest entry: the one whose rank (smaller entries, then equal entries before it) matches.
        for (int i = tid; i < PercentileClipping.HistoryLength; i += size)
        {
            float x = history[i];
            int rank = 0;
            for (int j = 0; j < PercentileClipping.HistoryLength; j++)
            {
                float y = history[j];
                rank += y < x || (y == x && j < i) ? 1 : 0;
            }
            if (rank == percentile) selected[0] = x;
        }
        Group.Barrier();
        if (tid == 0)
        {
            float norm = MathF.Sqrt(total);
            float clip = MathF.Sqrt(selected[0]);
            result[0] = !finite ? 0f : norm > clip ? clip / norm : 1f;
            result[1] = norm;
            result[2] = clip;
        }
    }
}
