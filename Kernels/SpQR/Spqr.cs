using ILGPU;
using ILGPU.Runtime;
using Kernels.Engine;
using Kernels.Runtime;
using Kernels.Tensors;
using DeviceHalf = ILGPU.Half;

namespace Kernels.SpQR;

/// <summary>
/// SpQR operations on a device-resident <see cref="SpqrMatrix"/>: decode to dense fp16 and the fused decode-GEMV.
/// Everything is validated before launch (the matrix itself on construction), launched asynchronously on the
/// matrix's device stream, and never synchronizes the host.
/// </summary>
public static partial class Spqr
{
    /// <summary>Threads a GEMV group: 8 warps on a GPU (32 tiles in flight per tile row); one warp on the CPU accelerator, where every group thread is an OS thread.</summary>
    internal static int GemvGroupSize(Runtime.ComputeDevice device) =>
        device.IsCuda ? Math.Min(256, SpqrGemvKernel.MaxWarps * device.Accelerator.WarpSize) : device.Accelerator.WarpSize;

    /// <summary>
    /// Decodes W to dense fp16 in original column order: <paramref name="output"/>[r, perm[j]] = ŵ[r, j] (+ the outlier
    /// at (r, j), added in f32 and rounded once). Bit-exact with <see cref="SpqrReference.Decode"/>.
    /// </summary>
    /// <param name="matrix">The SpQR matrix (m×n).</param>
    /// <param name="output">Dense [m, n] fp16 destination on the matrix's device.</param>
    public static void Decode(SpqrMatrix matrix, DeviceTensorSpan<DeviceHalf> output)
    {
        ArgumentNullException.ThrowIfNull(matrix);
        Require.SameDevice(matrix.Device, output.Device, nameof(output));
        Require.Dense(output, nameof(output));
        Require.Shape(output.Lengths, [matrix.Rows, matrix.Columns], nameof(output));
        matrix.ThrowIfDisposed();

        var device = matrix.Device;
        int group = device.ElementwiseGroupSize;
        long words = SpqrLayout.DenseWords(matrix.Rows, matrix.Columns);
        var dense = device.GetKernel(SpqrKernelKeys.DecodeDense, acc => acc.LoadCatalogKernel<
            ArrayView<ulong>, ArrayView<uint>, ArrayView<DeviceHalf>, int, int>(SpqrDecodeKernels.Dense));
        var outliers = device.GetKernel(SpqrKernelKeys.DecodeOutliers, acc => acc.LoadCatalogKernel<
            ArrayView<int>, ArrayView<uint>, ArrayView<uint>, ArrayView<DeviceHalf>, int, int, int>(SpqrDecodeKernels.Outliers));
        var o = output.View.AsContiguous();
        dense(device.Stream, new KernelConfig(device.GroupsFor(words, group), group),
            matrix.DenseWeights, matrix.Permutation, o, matrix.Rows, matrix.Columns);
        if (matrix.Packed.ColVals.Length > 0)
            outliers(device.Stream, new KernelConfig(device.GroupsFor(matrix.Rows, group), group),
                matrix.RowOffsets, matrix.ColVals, matrix.Permutation, o, matrix.Rows, matrix.Columns,
                matrix.Layout == SpqrSparseLayout.Ptcsr ? 1 : 0);
    }

    /// <summary>
    /// y = W·x for one token, fused: tile decode, outliers and the permutation gather in one kernel, f32 accumulation,
    /// one fp16 rounding per output. Any n up to 65536 (no shared-memory limit on the width).
    /// </summary>
    /// <param name="matrix">The SpQR matrix (m×n).</param>
    /// <param name="x">Input activations, n fp16 values (original column order).</param>
    /// <param name="y">Output, m fp16 values.</param>
    public static void Gemv(SpqrMatrix matrix, ReadOnlyDeviceTensorSpan<DeviceHalf> x, DeviceTensorSpan<DeviceHalf> y) =>
        Gemv(matrix, x, y, groupSize: null);

    /// <summary><see cref="Gemv(SpqrMatrix, ReadOnlyDeviceTensorSpan{DeviceHalf}, DeviceTensorSpan{DeviceHalf})"/> with a forced group size (tests cover the multi-warp reduction on the CPU).</summary>
    internal static void Gemv(SpqrMatrix matrix, ReadOnlyDeviceTensorSpan<DeviceHalf> x, DeviceTensorSpan<DeviceHalf> y, int? groupSize)
    {
        ArgumentNullException.ThrowIfNull(matrix);
        Require.SameDevice(matrix.Device, x.Device, nameof(x));
        Require.SameDevice(matrix.Device, y.Device, nameof(y));
        Require.Dense(x, nameof(x));
        Require.Dense(y, nameof(y));
        Require.Length(x.FlattenedLength, matrix.Columns, nameof(x), $"a GEMV with a {matrix.Rows}×{matrix.Columns} SpQR matrix");
        Require.Length(y.FlattenedLength, matrix.Rows, nameof(y), $"a GEMV with a {matrix.Rows}×{matrix.Columns} SpQR matrix");
        Require.Disjoint(Footprint.Of(y, nameof(y)), Footprint.Of(x, nameof(x)));
        matrix.ThrowIfDisposed();
        var device = matrix.Device;
        if (device.Accelerator.WarpSize < 8)
            throw new NotSupportedException($"Spqr.Gemv needs a warp of at least 8 lanes (one 16×16 tile per 8 lanes); {device.Name} has {device.Accelerator.WarpSize}.");

        int group = groupSize ?? GemvGroupSize(device);
        if (group % device.Accelerator.WarpSize != 0 || group > device.Accelerator.MaxNumThreadsPerGroup || group / device.Accelerator.WarpSize > SpqrGemvKernel.MaxWarps)
            throw new ArgumentOutOfRangeException(nameof(groupSize), $"group size {group} must be a whole number of warps, at most {device.Accelerator.MaxNumThreadsPerGroup}.");
        int tileRows = SpqrLayout.Tiles(matrix.Rows);
        var kernel = device.GetKernel(SpqrKernelKeys.Gemv, acc => acc.LoadCatalogKernel<
            ArrayView<Word4>, ArrayView<int>, ArrayView<uint>, ArrayView<Word4>, ArrayView<uint>,
            ArrayView<DeviceHalf>, ArrayView<DeviceHalf>, int, int, int>(SpqrGemvKernel.Kernel));
        var perm = matrix.Permutation;
        kernel(device.Stream, new KernelConfig(device.GroupsFor((long)tileRows * group, group), group),
            matrix.DenseWeights.Cast<Word4>(), matrix.RowOffsets, matrix.ColVals, perm.Cast<Word4>(), perm,
            x.View.AsContiguous(), y.View.AsContiguous(), matrix.Rows, matrix.Columns,
            matrix.Layout == SpqrSparseLayout.Ptcsr ? 1 : 0);
    }
}

public static partial class Spqr
{
    /// <summary>
    /// Y = X·Wᵀ for a batch of tokens (best for 2–64; any count works) on the tile engine's tensor cores:
    /// <paramref name="x"/> is [tokens, n], <paramref name="y"/> is [tokens, m] (PyTorch <c>Linear</c> layouts), fp16
    /// in and out, f32 accumulation. The weights are decoded tile by tile into shared memory by
    /// <see cref="SpqrTileProducer"/> (fp16(ŵ + v), as <see cref="Decode"/>), never to global memory. With a
    /// permutation, x is first gathered into packed column order in a buffer the matrix keeps.
    /// </summary>
    /// <param name="matrix">The SpQR matrix (m×n).</param>
    /// <param name="x">Activations [tokens, n] fp16.</param>
    /// <param name="y">Outputs [tokens, m] fp16.</param>
    public static void Gemm(SpqrMatrix matrix, ReadOnlyDeviceTensorSpan<DeviceHalf> x, DeviceTensorSpan<DeviceHalf> y) =>
        Gemm(matrix, x, y, splits: 0, shape: 0);

    /// <summary>
    /// <see cref="Gemm(SpqrMatrix, ReadOnlyDeviceTensorSpan{DeviceHalf}, DeviceTensorSpan{DeviceHalf})"/> with forced
    /// split-K (0 = automatic) and tile shape (0 = automatic: skinny 128×16 up to 16 tokens, wide 64×32 up to 32, large
    /// 128×64 above, so 64 tokens decode each weight tile once; 1, 2, 3 force one), for tests.
    /// </summary>
    internal static void Gemm(SpqrMatrix matrix, ReadOnlyDeviceTensorSpan<DeviceHalf> x, DeviceTensorSpan<DeviceHalf> y, int splits, int shape)
    {
        ArgumentNullException.ThrowIfNull(matrix);
        Require.SameDevice(matrix.Device, x.Device, nameof(x));
        Require.SameDevice(matrix.Device, y.Device, nameof(y));
        Require.Dense(x, nameof(x));
        Require.Dense(y, nameof(y));
        Require.Rank(x.Rank, 2, nameof(x), x.Lengths);
        int tokens = (int)x.Lengths[0];
        if (tokens < 1) throw new ArgumentException($"x has lengths {TensorShape.Format(x.Lengths)}: at least one token is needed.", nameof(x));
        Require.Shape(x.Lengths, [tokens, matrix.Columns], nameof(x));
        Require.Shape(y.Lengths, [tokens, matrix.Rows], nameof(y));
        Require.Disjoint(Footprint.Of(y, nameof(y)), Footprint.Of(x, nameof(x)));
        matrix.ThrowIfDisposed();
        var device = matrix.Device;
        if (!device.IsCuda && device.Accelerator.WarpSize != 32)
            throw new NotSupportedException($"Spqr.Gemm runs on the tile engine, which needs 32-lane warps; {device.Name} has {device.Accelerator.WarpSize}.");

        ArrayView<DeviceHalf> activations = x.View.AsContiguous().SubView(0, x.FlattenedLength);
        using var gathered = matrix.Packed.InPerm.Length > 0 ? matrix.RentGatherScratch(x.FlattenedLength) : default;
        if (matrix.Packed.InPerm.Length > 0)
        {
            var xp = gathered.View;
            var gather = device.GetKernel(SpqrKernelKeys.Gather, acc => acc.LoadCatalogKernel<
                ArrayView<DeviceHalf>, ArrayView<uint>, ArrayView<DeviceHalf>, int, int>(SpqrGatherKernel.Kernel));
            int group = device.ElementwiseGroupSize;
            gather(device.Stream, new KernelConfig(device.GroupsFor(x.FlattenedLength, group), group),
                activations, matrix.Permutation, xp, tokens, matrix.Columns);
            activations = xp;
        }
        var xm = Matrix16.FromView(activations, tokens, matrix.Columns);
        var epilogue = new StoreEpilogue<DeviceHalf, F16>(y.View.AsContiguous().SubView(0, y.FlattenedLength), null, matrix.Rows);
        if (shape == 0) shape = tokens <= TileShapes.TileN<SkinnyTile>() ? 1 : tokens <= TileShapes.TileN<WideTile>() ? 2 : 3;
        switch (shape)
        {
            case 1: RunEngine<SkinnyTile>(matrix, xm, epilogue, tokens, splits); break;
            case 2: RunEngine<WideTile>(matrix, xm, epilogue, tokens, splits); break;
            default: RunEngine<LargeTile>(matrix, xm, epilogue, tokens, splits); break;
        }
    }

    private static void RunEngine<TShape>(SpqrMatrix matrix, Matrix16 x, StoreEpilogue<DeviceHalf, F16> epilogue, int tokens, int requestedSplits)
        where TShape : struct, ITileShape
    {
        var device = matrix.Device;
        // Split K when the M tiles cannot fill the GPU (a 4096-row layer has only 32 tiles of 128 rows).
        var single = GemmProblem.Create<TShape>(matrix.Rows, tokens, matrix.Columns);
        var problem = GemmProblem.Create<TShape>(matrix.Rows, tokens, matrix.Columns,
            requestedSplits > 0 ? requestedSplits : TileEngine.AutoSplits(device, single));
        TileEngine.Run<TShape, F16Mma, SpqrTileProducer, StoreEpilogue<DeviceHalf, F16>>(device, new SpqrTileProducer(matrix), x, epilogue, problem);
    }
}

/// <summary>Kernel-cache keys of the SpQR family.</summary>
internal static class SpqrKernelKeys
{
    public static readonly object DecodeDense = new();
    public static readonly object DecodeOutliers = new();
    public static readonly object Gemv = new();
    public static readonly object Gather = new();
}
