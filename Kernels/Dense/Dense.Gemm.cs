using ILGPU;
using Kernels.Engine;
using Kernels.Runtime;
using Kernels.Tensors;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Dense;

/// <summary>
/// Dense f16/bf16 matrix products in PyTorch layouts: the baselines every compressed format is measured against.
/// <c>Gemm</c> runs on the tile engine (tensor cores); <c>Gemv</c> is a bandwidth-bound kernel of its own for one
/// token.
/// </summary>
public static partial class Dense
{
    /// <summary>
    /// Y = X·Wᵀ (+ bias), as <c>torch.nn.functional.linear</c>: <paramref name="x"/> is N×K (tokens × features),
    /// <paramref name="w"/> M×K (the <c>Linear.weight</c> layout), <paramref name="bias"/> has M elements or is null,
    /// <paramref name="y"/> is N×M. Element type f16 (<see cref="DeviceHalf"/>) or bf16 (<see cref="BFloat16"/>),
    /// f32 accumulation; any M, N, K ≥ 1 (edges are predicated, nothing is padded). All tensors dense, on one device.
    /// Enqueued on the device's stream.
    /// </summary>
    public static void Gemm<T>(ReadOnlyDeviceTensorSpan<T> x, ReadOnlyDeviceTensorSpan<T> w,
        ReadOnlyDeviceTensorSpan<T>? bias, DeviceTensorSpan<T> y) where T : unmanaged =>
        Gemm(x, w, bias, y, default);

    /// <summary>Tuning knobs tests and benchmarks use to force a path; 0/null = automatic.</summary>
    internal readonly record struct GemmTuning(int Splits = 0, GemmShape? Shape = null, bool ForceScalarLoads = false);

    internal static void Gemm<T>(ReadOnlyDeviceTensorSpan<T> x, ReadOnlyDeviceTensorSpan<T> w,
        ReadOnlyDeviceTensorSpan<T>? bias, DeviceTensorSpan<T> y, GemmTuning tuning) where T : unmanaged
    {
        RequireHalfPrecision<T>(nameof(x));
        CheckOperand(x, nameof(x));
        CheckOperand(w, nameof(w));
        Require.Rank(x.Rank, 2, nameof(x), x.Lengths);
        Require.Rank(w.Rank, 2, nameof(w), w.Lengths);
        if (y.IsEmptyView) throw new ArgumentException("y is a default (empty) view.", nameof(y));
        Require.Rank(y.Rank, 2, nameof(y), y.Lengths);
        nint n = x.Lengths[0], k = x.Lengths[1], m = w.Lengths[0];
        if (w.Lengths[1] != k)
            throw new ArgumentException(
                $"w has lengths {TensorShape.Format(w.Lengths)} but x {TensorShape.Format(x.Lengths)} needs K = {k} columns.", nameof(w));
        Require.Shape(y.Lengths, [n, m], nameof(y));
        Require.Dense(y, nameof(y));
        Require.SameDevice(x.Device, w.Device, nameof(w));
        Require.SameDevice(x.Device, y.Device, nameof(y));
        if (bias is { } b)
        {
            CheckOperand(b, nameof(bias));
            Require.Shape(b.Lengths, [m], nameof(bias));
            Require.SameDevice(x.Device, b.Device, nameof(bias));
        }
        if (k < 1) throw new ArgumentException($"x has lengths {TensorShape.Format(x.Lengths)}: K must be at least 1.", nameof(x));
        Require.Disjoint(Footprint.Of(y, nameof(y)), Footprint.Of(x, nameof(x)), Footprint.Of(w, nameof(w)), Footprint.Of(bias, nameof(bias)));
        CheckInt(n, m, k);
        if (n == 0 || m == 0) return;

        var device = x.Device;
        var xm = Matrix16.From(x, tuning.ForceScalarLoads);
        var wm = Matrix16.From(w, tuning.ForceScalarLoads);
        var yv = y.View.AsContiguous().SubView(0, y.FlattenedLength);
        ArrayView<T>? bv = bias is { } bb ? bb.View.AsContiguous().SubView(0, bb.FlattenedLength) : null;
        var shape = tuning.Shape ?? ShapeFor((int)n);
        if (typeof(T) == typeof(DeviceHalf))
        {
            var yh = yv.Cast<DeviceHalf>();
            ArrayView<DeviceHalf>? bh = bv?.Cast<DeviceHalf>();
            switch (shape)
            {
                case GemmShape.Skinny: Run<SkinnyTile, F16Mma, DeviceHalf, F16>(device, xm, wm, bh, yh, (int)m, (int)n, (int)k, tuning.Splits); break;
                case GemmShape.Wide: Run<WideTile, F16Mma, DeviceHalf, F16>(device, xm, wm, bh, yh, (int)m, (int)n, (int)k, tuning.Splits); break;
                default: Run<LargeTile, F16Mma, DeviceHalf, F16>(device, xm, wm, bh, yh, (int)m, (int)n, (int)k, tuning.Splits); break;
            }
        }
        else
        {
            var yb = yv.Cast<BFloat16>();
            ArrayView<BFloat16>? bb16 = bv?.Cast<BFloat16>();
            switch (shape)
            {
                case GemmShape.Skinny: Run<SkinnyTile, BF16Mma, BFloat16, BF16>(device, xm, wm, bb16, yb, (int)m, (int)n, (int)k, tuning.Splits); break;
                case GemmShape.Wide: Run<WideTile, BF16Mma, BFloat16, BF16>(device, xm, wm, bb16, yb, (int)m, (int)n, (int)k, tuning.Splits); break;
                default: Run<LargeTile, BF16Mma, BFloat16, BF16>(device, xm, wm, bb16, yb, (int)m, (int)n, (int)k, tuning.Splits); break;
            }
        }
    }

    /// <summary>The engine tile shapes the dense GEMM chooses between.</summary>
    internal enum GemmShape
    {
        /// <summary><see cref="SkinnyTile"/>: 128×16, for N ≤ 16 (decode-sized batches).</summary>
        Skinny,
        /// <summary><see cref="WideTile"/>: 64×32, for 16 &lt; N ≤ 32.</summary>
        Wide,
        /// <summary><see cref="LargeTile"/>: 128×64, for N &gt; 32.</summary>
        Large,
    }

    /// <summary>The tile shape for N tokens: the smallest N tile that covers them, so weights are read about once.</summary>
    internal static GemmShape ShapeFor(int n) => n <= 16 ? GemmShape.Skinny : n <= 32 ? GemmShape.Wide : GemmShape.Large;

    private static void Run<TShape, TMma, T, TConvert>(ComputeDevice device, Matrix16 x, Matrix16 w, ArrayView<T>? bias,
        ArrayView<T> y, int m, int n, int k, int requestedSplits)
        where TShape : struct, ITileShape
        where TMma : struct, IMmaKind
        where T : unmanaged
        where TConvert : struct, IElementConverter<T>
    {
        var single = GemmProblem.Create<TShape>(m, n, k);
        int splits = requestedSplits > 0 ? requestedSplits : AutoSplits(device, single);
        var problem = GemmProblem.Create<TShape>(m, n, k, splits);
        var final = new StoreEpilogue<T, TConvert>(y, bias, m);
        TileEngine.Run<TShape, TMma, DenseWeightProducer, StoreEpilogue<T, TConvert>>(device, new DenseWeightProducer(w), x, final, problem);
    }

    internal static int AutoSplits(ComputeDevice device, in GemmProblem problem) => TileEngine.AutoSplits(device, problem);

    private static void RequireHalfPrecision<T>(string name) where T : unmanaged
    {
        if (typeof(T) != typeof(DeviceHalf) && typeof(T) != typeof(BFloat16))
            throw new ArgumentException(
                $"{name}: Dense takes f16 (ILGPU.Half) or bf16 (Kernels.Tensors.BFloat16) elements, not {typeof(T).Name}.", name);
    }

    private static void CheckOperand<T>(ReadOnlyDeviceTensorSpan<T> span, string name) where T : unmanaged
    {
        if (span.IsEmptyView) throw new ArgumentException($"{name} is a default (empty) view.", name);
        Require.Dense(span, name);
    }

    private static void CheckInt(nint n, nint m, nint k)
    {
        if (n > int.MaxValue || m > int.MaxValue || k > int.MaxValue)
            throw new ArgumentOutOfRangeException(nameof(k), $"Dense dimensions must fit in int32 (N={n}, M={m}, K={k}).");
    }
}
