using ILGPU;
using ILGPU.Runtime;
using Kernels.Runtime;

namespace Kernels.Engine;

/// <summary>Split-K first pass: writes each split's f32 partial sum to <c>Partials[(split·N + n)·M + m]</c>.</summary>
public readonly struct SplitKPartialEpilogue : ITileEpilogue
{
    /// <summary>Workspace of Splits·N·M floats.</summary>
    public readonly ArrayView<float> Partials;
    /// <summary>Weight rows.</summary>
    public readonly int M;
    /// <summary>Tokens.</summary>
    public readonly int N;

    /// <summary>Creates the epilogue over a workspace of at least splits·N·M floats.</summary>
    public SplitKPartialEpilogue(ArrayView<float> partials, int m, int n)
    {
        Partials = partials;
        M = m;
        N = n;
    }

    /// <inheritdoc />
    public void Store(int split, int m, int n, float value) => Partials[((long)split * N + n) * M + m] = value;
}

/// <summary>
/// Split-K second pass: sums the partials of every (m, n) in split order 0, 1, … (so the result does not depend on
/// scheduling) and hands the sum to the final epilogue with split 0.
/// </summary>
public static class SplitKReduction
{
    /// <summary>Enqueues the reduction of <paramref name="splits"/> partial planes of N×M into <paramref name="epilogue"/>.</summary>
    public static void Launch<TEpilogue>(ComputeDevice device, ArrayView<float> partials, int splits, int m, int n, in TEpilogue epilogue)
        where TEpilogue : struct, ITileEpilogue
    {
        var kernel = device.GetKernel((typeof(SplitKReduction), typeof(TEpilogue)),
            acc => acc.LoadCatalogKernel<ArrayView<float>, int, int, int, TEpilogue>(Kernel<TEpilogue>));
        int groupSize = device.ElementwiseGroupSize;
        int groups = device.GroupsFor((long)m * n, groupSize);
        kernel(device.Stream, new KernelConfig(groups, groupSize), partials, splits, m, n, epilogue);
    }

    /// <summary>The reduction kernel (grid-stride over the N×M outputs; consecutive threads take consecutive m).</summary>
    public static void Kernel<TEpilogue>(ArrayView<float> partials, int splits, int m, int n, TEpilogue epilogue)
        where TEpilogue : struct, ITileEpilogue
    {
        long plane = (long)m * n;
        for (long i = Grid.GlobalIndex.X; i < plane; i += (long)Grid.DimX * Group.DimX)
        {
            float sum = 0f;
            for (int s = 0; s < splits; s++) sum += partials[s * plane + i];
            epilogue.Store(0, (int)(i % m), (int)(i / m), sum);
        }
    }
}
