using ILGPU;
using ILGPU.Runtime;
using Kernels.Dense;
using Kernels.Engine;
using Kernels.Runtime;
using Kernels.Tensors;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Sparse;

public static partial class SpMM
{
    /// <summary>
    /// Y = X·Wᵀ: <paramref name="x"/> is N×K (tokens × input features), <paramref name="weights"/> the M×K Tiled-CSL
    /// matrix, <paramref name="y"/> N×M; f16 (<see cref="DeviceHalf"/>) or bf16 (<see cref="BFloat16"/>) matching the
    /// matrix's value type, f32 accumulation; any N ≥ 0 (tuned for 1–64). The sparse path scatters the words of each
    /// 128×64 tile into a zeroed, swizzled shared tile on the tile engine (<see cref="TiledCslTileProducer"/>), with
    /// split-K f32 partials and a deterministic reduction when the grid would be too small; the dense path runs the
    /// engine's dense GEMM on the matrix's dense copy, decoded on the device on first use and cached in the matrix
    /// (<see cref="TiledCslMatrix.DenseCache"/>, 2·M·K bytes; <see cref="TiledCslMatrix.DropDenseCache"/> frees it).
    /// <paramref name="path"/> forces a path; the returned plan says what ran and why. Everything is validated before
    /// anything is enqueued; nothing is written on failure. Asynchronous on the device's stream.
    /// </summary>
    public static SpMMPlan Multiply<T>(ReadOnlyDeviceTensorSpan<T> x, TiledCslMatrix weights, DeviceTensorSpan<T> y,
        SpMMPath path = SpMMPath.Auto) where T : unmanaged =>
        Multiply(x, weights, y, path, default);

    /// <summary>Knobs tests use to cover every code path: 0/null = automatic.</summary>
    internal readonly record struct Tuning(int Splits = 0, SparseShape? Shape = null);

    /// <summary>The engine tile shape of the sparse path.</summary>
    internal enum SparseShape
    {
        /// <summary><see cref="SkinnyTile"/>: 128 rows × 16 tokens, one Tiled-CSL tile row a group.</summary>
        Skinny,
        /// <summary><see cref="WideTile"/>: 64 × 32; each group loads a whole Tiled-CSL tile and scatters its half (only by request).</summary>
        Wide,
        /// <summary><see cref="LargeTile"/>: 128 × 64, one Tiled-CSL tile row a group.</summary>
        Large,
    }

    /// <summary>
    /// Skinny up to 32 tokens, large above: both cover a whole 128-row Tiled-CSL tile, so a group uses every word it
    /// loads; a weight tile is loaded once per N tile (16 or 64 tokens). Not tuned on a GPU yet.
    /// </summary>
    internal static SparseShape ShapeFor(int n) => n <= 32 ? SparseShape.Skinny : SparseShape.Large;

    internal static SpMMPlan Multiply<T>(ReadOnlyDeviceTensorSpan<T> x, TiledCslMatrix weights, DeviceTensorSpan<T> y,
        SpMMPath path, Tuning tuning) where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(weights);
        if (typeof(T) != typeof(DeviceHalf) && typeof(T) != typeof(BFloat16))
            throw new ArgumentException($"x: SpMM takes f16 (ILGPU.Half) or bf16 (Kernels.Tensors.BFloat16) elements, not {typeof(T).Name}.", nameof(x));
        TiledCslEncoder.RequireValueType<T>(weights.ValueType, nameof(x));
        if (x.IsEmptyView) throw new ArgumentException("x is a default (empty) view.", nameof(x));
        if (y.IsEmptyView) throw new ArgumentException("y is a default (empty) view.", nameof(y));
        Require.Rank(x.Rank, 2, nameof(x), x.Lengths);
        Require.Rank(y.Rank, 2, nameof(y), y.Lengths);
        Require.Dense(x, nameof(x));
        Require.Dense(y, nameof(y));
        Require.SameDevice(weights.Device, x.Device, nameof(x));
        Require.SameDevice(weights.Device, y.Device, nameof(y));
        if (x.Lengths[1] != weights.Columns)
            throw new ArgumentException(
                $"x has lengths {TensorShape.Format(x.Lengths)} but the {weights.Rows}×{weights.Columns} weights need K = {weights.Columns} columns.", nameof(x));
        if (x.Lengths[0] > int.MaxValue)
            throw new ArgumentOutOfRangeException(nameof(x), $"x has {x.Lengths[0]} tokens; at most {int.MaxValue}.");
        int n = (int)x.Lengths[0];
        Require.Shape(y.Lengths, [n, weights.Rows], nameof(y));
        Require.Disjoint(Footprint.Of(y, nameof(y)), Footprint.Of(x, nameof(x)));
        weights.ThrowIfDisposed();
        if (!Enum.IsDefined(path)) throw new ArgumentOutOfRangeException(nameof(path), path, "Unknown SpMM path.");
        var plan = Plan(weights, n, path);
        if (tuning.Splits > 0 && plan.Path == SpMMPath.Sparse) plan = plan with { Splits = tuning.Splits };
        if (n == 0) return plan;

        if (plan.Path == SpMMPath.Dense)
        {
            var dense = weights.DenseWeights<T>();
            Dense.Dense.Gemm(x, dense.ReadOnlySpan, null, y);
            return plan;
        }
        var device = weights.Device;
        var xm = Matrix16.From(x);
        var yv = y.View.AsContiguous().SubView(0, y.FlattenedLength);
        var words = weights.WordsTensor.View.AsContiguous();
        ulong address = (ulong)words.LoadEffectiveAddressAsPtr().ToInt64();
        var producer = new TiledCslTileProducer(words, address, weights.OffsetsTensor.View.AsContiguous(), weights.Shape.TileColumnCount);
        var shape = tuning.Shape ?? ShapeFor(n);
        int m = weights.Rows, k = weights.Columns;
        if (typeof(T) == typeof(DeviceHalf))
        {
            var out16 = yv.Cast<DeviceHalf>();
            switch (shape)
            {
                case SparseShape.Skinny: Run<SkinnyTile, F16Mma, DeviceHalf, F16>(device, producer, xm, out16, m, n, k, plan.Splits); break;
                case SparseShape.Wide: Run<WideTile, F16Mma, DeviceHalf, F16>(device, producer, xm, out16, m, n, k, plan.Splits); break;
                default: Run<LargeTile, F16Mma, DeviceHalf, F16>(device, producer, xm, out16, m, n, k, plan.Splits); break;
            }
        }
        else
        {
            var outB = yv.Cast<BFloat16>();
            switch (shape)
            {
                case SparseShape.Skinny: Run<SkinnyTile, BF16Mma, BFloat16, BF16>(device, producer, xm, outB, m, n, k, plan.Splits); break;
                case SparseShape.Wide: Run<WideTile, BF16Mma, BFloat16, BF16>(device, producer, xm, outB, m, n, k, plan.Splits); break;
                default: Run<LargeTile, BF16Mma, BFloat16, BF16>(device, producer, xm, outB, m, n, k, plan.Splits); break;
            }
        }
        return plan;
    }

    /// <summary>Registers and local bytes per thread of the f16 sparse kernel used for <paramref name="n"/> tokens (null on the CPU accelerator).</summary>
    internal static Kernels.Cuda.KernelResources? SparseKernelResources(ComputeDevice device, int n) => ShapeFor(n) == SparseShape.Skinny
        ? TileEngine.Resources<SkinnyTile, F16Mma, TiledCslTileProducer, StoreEpilogue<DeviceHalf, F16>>(device)
        : TileEngine.Resources<LargeTile, F16Mma, TiledCslTileProducer, StoreEpilogue<DeviceHalf, F16>>(device);

    private static void Run<TShape, TMma, T, TConvert>(ComputeDevice device, in TiledCslTileProducer producer, Matrix16 x,
        ArrayView<T> y, int m, int n, int k, int splits)
        where TShape : struct, ITileShape
        where TMma : struct, IMmaKind
        where T : unmanaged
        where TConvert : struct, IElementConverter<T> =>
        TileEngine.Run<TShape, TMma, TiledCslTileProducer, StoreEpilogue<T, TConvert>>(device, producer, x,
            new StoreEpilogue<T, TConvert>(y, null, m), GemmProblem.Create<TShape>(m, n, k, splits));
}
