using System.Runtime.CompilerServices;
using ILGPU;
using Kernels.Runtime;
using Kernels.Tensors;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Lora;

/// <summary>
/// Fused LoRA (LoRAFusion, Punica): Y = X·Wᵀ + α·(drop(X)·Aᵀ)·Bᵀ (+ bias) with PEFT's layouts — X M×K tokens,
/// W N×K, A r×K, B N×r, α = lora_alpha / r — its gradients, multi-adapter batches and decode. The graph is cut at the
/// small S = drop(X)·Aᵀ (M×r, f32): a shrink kernel writes S, then the tile engine's base GEMM finishes each output
/// tile with α·S·Bᵀ, so neither X·Wᵀ nor S·Bᵀ is ever written to memory. Dropout masks are regenerated from
/// (seed, offset) in the backward (<see cref="LoraDropout"/>). All accumulation is f32, and no result depends on
/// scheduling (split-M partials are added in a fixed order, no float atomics). Every operation validates all its
/// arguments before it enqueues anything, then runs asynchronously on the tensors' stream.
/// </summary>
public static partial class Lora
{
    /// <summary>
    /// S = drop(X)·Aᵀ: the rank-space activations (M×r, f32) the fused forward and the backward use. Kept elements of X
    /// are scaled by 1 / (1 − p), so S is exactly what PEFT's <c>lora_A(dropout(x))</c> computes.
    /// </summary>
    /// <param name="x">Tokens X, M×K.</param>
    /// <param name="a">A, r×K (r ≤ 128).</param>
    /// <param name="dropout">The dropout on X (<c>default</c> for none).</param>
    /// <param name="s">Destination S, M×r f32.</param>
    public static void Shrink<T>(ReadOnlyDeviceTensorSpan<T> x, ReadOnlyDeviceTensorSpan<T> a, LoraDropout dropout, DeviceTensorSpan<float> s)
        where T : unmanaged
    {
        var device = x.Device;
        var (m, k) = Matrix(x, nameof(x), device);
        var (r, ka) = Matrix(a, nameof(a), device);
        RequireRank(r, nameof(a), a.Lengths);
        if (ka != k) throw new ArgumentException($"a has lengths {Shape(a.Lengths)} but x {Shape(x.Lengths)} needs {k} columns.", nameof(a));
        Output(s, nameof(s), device, m, r);
        Require.Disjoint(Footprint.Of(s, nameof(s)), Footprint.Of(x, nameof(x)), Footprint.Of(a, nameof(a)));
        EnqueueShrink(device, x.View.AsContiguous(), m, k, a.View.AsContiguous(), new SingleLoraAdapter(r, 1f), dropout,
            s.View.AsContiguous(), r);
    }

    /// <summary>
    /// dS = α·dY·B (M×r) and dB = α·dYᵀ·S (N×r), both f32. dS feeds <see cref="BackwardDa{T}"/> and
    /// <c>BackwardDx</c>. Usually one sweep reads each element of dY once for both (ranks up to ≈ 16–24 at M = 8192,
    /// N = 4096: 103 MB instead of 144 MB at r = 16, f16); at larger ranks and many tokens, where the sweep's per-chunk
    /// dB partials would outweigh a second read of dY, two passes run instead — whichever moves fewer bytes. Either way
    /// the result is deterministic (fixed-order reductions, no atomics).
    /// </summary>
    /// <param name="dy">Upstream gradient dY, M×N.</param>
    /// <param name="b">B, N×r.</param>
    /// <param name="s">S from the forward, M×r f32.</param>
    /// <param name="alpha">α.</param>
    /// <param name="ds">Destination dS, M×r f32.</param>
    /// <param name="db">Destination dB, N×r f32.</param>
    public static void BackwardDsDb<T>(ReadOnlyDeviceTensorSpan<T> dy, ReadOnlyDeviceTensorSpan<T> b, ReadOnlyDeviceTensorSpan<float> s,
        float alpha, DeviceTensorSpan<float> ds, DeviceTensorSpan<float> db) where T : unmanaged
    {
        var device = dy.Device;
        var (m, n) = Matrix(dy, nameof(dy), device);
        var (nb, r) = Matrix(b, nameof(b), device);
        RequireRank(r, nameof(b), b.Lengths);
        if (nb != n) throw new ArgumentException($"b has lengths {Shape(b.Lengths)} but dy {Shape(dy.Lengths)} needs {n} rows.", nameof(b));
        Input(s, nameof(s), device, m, r);
        RequireFinite(alpha, nameof(alpha));
        Output(ds, nameof(ds), device, m, r);
        Output(db, nameof(db), device, n, r);
        Footprint fdy = Footprint.Of(dy, nameof(dy)), fb = Footprint.Of(b, nameof(b)), fs = Footprint.Of(s, nameof(s)), fds = Footprint.Of(ds, nameof(ds));
        Require.Disjoint(fds, fdy, fb, fs);
        Require.Disjoint(Footprint.Of(db, nameof(db)), fdy, fb, fs, fds);
        EnqueueDsDb(device, dy.View.AsContiguous(), m, n, b.View.AsContiguous(), s.View.AsContiguous(), r, alpha,
            ds.View.AsContiguous(), db.View.AsContiguous());
    }

    /// <summary>
    /// dA = dSᵀ·drop(X) (r×K, f32), with the forward's dropout mask regenerated from its seed (never stored). More than
    /// 512 tokens are reduced through split-M partials in the engine's shared scratch buffer, added in a fixed order.
    /// </summary>
    /// <param name="ds">dS from <see cref="BackwardDsDb{T}"/>, M×r f32.</param>
    /// <param name="x">Tokens X, M×K (undropped, as given to the forward).</param>
    /// <param name="dropout">The forward's dropout.</param>
    /// <param name="da">Destination dA, r×K f32.</param>
    public static void BackwardDa<T>(ReadOnlyDeviceTensorSpan<float> ds, ReadOnlyDeviceTensorSpan<T> x, LoraDropout dropout,
        DeviceTensorSpan<float> da) where T : unmanaged
    {
        var device = x.Device;
        var (m, k) = Matrix(x, nameof(x), device);
        var (mds, r) = Matrix(ds, nameof(ds), device);
        RequireRank(r, nameof(ds), ds.Lengths);
        if (mds != m) throw new ArgumentException($"ds has lengths {Shape(ds.Lengths)} but x {Shape(x.Lengths)} needs {m} rows.", nameof(ds));
        Output(da, nameof(da), device, r, k);
        Require.Disjoint(Footprint.Of(da, nameof(da)), Footprint.Of(ds, nameof(ds)), Footprint.Of(x, nameof(x)));
        EnqueueDa(device, ds.View.AsContiguous(), x.View.AsContiguous(), m, k, r, dropout, da.View.AsContiguous());
    }

    /// <summary>
    /// BGMV (Punica) for decode: y[m] += α_a·(x[m]·A_aᵀ)·B_aᵀ where a is row m's adapter in <paramref name="batch"/>;
    /// rows with adapter −1 are left unchanged. No dropout (inference).
    /// </summary>
    /// <param name="x">Tokens, M×K.</param>
    /// <param name="adapters">The adapter pool (K in, N out).</param>
    /// <param name="batch">One adapter index per row (M rows).</param>
    /// <param name="y">Output to add to, M×N (usually the base layer's output).</param>
    public static void Bgmv<T>(ReadOnlyDeviceTensorSpan<T> x, LoraAdapterSet<T> adapters, LoraBatch batch, DeviceTensorSpan<T> y)
        where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(adapters);
        ArgumentNullException.ThrowIfNull(batch);
        var device = x.Device;
        var (m, k) = Matrix(x, nameof(x), device);
        Require.SameDevice(device, adapters.Device, nameof(adapters));
        if (adapters.InFeatures != k)
            throw new ArgumentException($"x has lengths {Shape(x.Lengths)} but the adapters take K = {adapters.InFeatures} in-features.", nameof(x));
        batch.Validate(adapters, m, nameof(batch));
        Output(y, nameof(y), device, m, adapters.OutFeatures);
        // y is read and written (y += ...), element by element by the same thread: in place by design, but never over x.
        Require.Disjoint(Footprint.Of(y, nameof(y)), Footprint.Of(x, nameof(x)));
        var args = new LoraBgmv.Args<T>(x.View.AsContiguous(), m, k, adapters.OutFeatures, adapters.APool, adapters.BPool, y.View.AsContiguous());
        var map = adapters.Map(batch.Table);
        if (typeof(T) == typeof(float)) LoraBgmv.Launch<float, F32>(device, Unsafe.As<LoraBgmv.Args<T>, LoraBgmv.Args<float>>(ref args), map);
        else if (typeof(T) == typeof(DeviceHalf)) LoraBgmv.Launch<DeviceHalf, F16>(device, Unsafe.As<LoraBgmv.Args<T>, LoraBgmv.Args<DeviceHalf>>(ref args), map);
        else LoraBgmv.Launch<BFloat16, BF16>(device, Unsafe.As<LoraBgmv.Args<T>, LoraBgmv.Args<BFloat16>>(ref args), map);
    }

    // ---- enqueue helpers (arguments already validated) ----

    internal static void EnqueueShrink<T, TMap>(ComputeDevice device, ArrayView<T> x, int m, int k, ArrayView<T> a, in TMap map,
        LoraDropout dropout, ArrayView<float> s, int sStride) where T : unmanaged where TMap : struct, ILoraAdapterMap
    {
        var args = new LoraRowProduct.Args<T>(x, m, k, a, 0, 0, dropout, s, sStride);
        RowProduct(device, args, map);
    }

    /// <summary>
    /// dS and dB by the plan with fewer bytes (<see cref="LoraBackwardPlan"/>): one sweep over dY, or the two passes.
    /// <paramref name="fused"/> forces a path (tests); <c>null</c> lets the byte model choose.
    /// </summary>
    internal static void EnqueueDsDb<T>(ComputeDevice device, ArrayView<T> dy, int m, int n, ArrayView<T> b, ArrayView<float> s, int r,
        float alpha, ArrayView<float> ds, ArrayView<float> db, bool? fused = null) where T : unmanaged
    {
        var plan = BackwardPlan<T>(device, m, n, r);
        if (fused ?? plan.Fused)
        {
            if (typeof(T) == typeof(float))
                LoraDsDbSweep.Launch<float, F32, F32Wide>(device, dy.Cast<float>(), m, n, b.Cast<float>(), s, r, alpha, ds, db, plan);
            else if (typeof(T) == typeof(DeviceHalf))
                LoraDsDbSweep.Launch<DeviceHalf, F16, HalfWide<DeviceHalf, F16Word>>(device, dy.Cast<DeviceHalf>(), m, n,
                    b.Cast<DeviceHalf>(), s, r, alpha, ds, db, plan);
            else
                LoraDsDbSweep.Launch<BFloat16, BF16, HalfWide<BFloat16, BF16Word>>(device, dy.Cast<BFloat16>(), m, n,
                    b.Cast<BFloat16>(), s, r, alpha, ds, db, plan);
            return;
        }
        RowProduct(device, new LoraRowProduct.Args<T>(dy, m, n, b, 1, 1, default, ds, r), new SingleLoraAdapter(r, alpha));
        ColumnProduct(device, new LoraColumnProduct.Args<T>(s, r, dy, m, n, r, default, alpha, 1, db), db);
    }

    /// <summary>The dS/dB plan for dY M×N of <typeparamref name="T"/> at rank r on <paramref name="device"/>.</summary>
    internal static LoraBackwardPlan BackwardPlan<T>(ComputeDevice device, int m, int n, int r) where T : unmanaged =>
        LoraBackwardPlan.For(m, n, r, Unsafe.SizeOf<T>(), device.IsCuda ? 2 * device.Accelerator.NumMultiprocessors : 4);

    internal static void EnqueueDa<T>(ComputeDevice device, ArrayView<float> ds, ArrayView<T> x, int m, int k, int r, LoraDropout dropout,
        ArrayView<float> da) where T : unmanaged =>
        ColumnProduct(device, new LoraColumnProduct.Args<T>(ds, r, x, m, k, r, dropout, 1f, 0, da), da);

    private static void RowProduct<T, TMap>(ComputeDevice device, LoraRowProduct.Args<T> args, in TMap map)
        where T : unmanaged where TMap : struct, ILoraAdapterMap
    {
        if (typeof(T) == typeof(float))
            LoraRowProduct.Launch<float, F32, TMap>(device, Unsafe.As<LoraRowProduct.Args<T>, LoraRowProduct.Args<float>>(ref args), map);
        else if (typeof(T) == typeof(DeviceHalf))
            LoraRowProduct.Launch<DeviceHalf, F16, TMap>(device, Unsafe.As<LoraRowProduct.Args<T>, LoraRowProduct.Args<DeviceHalf>>(ref args), map);
        else
            LoraRowProduct.Launch<BFloat16, BF16, TMap>(device, Unsafe.As<LoraRowProduct.Args<T>, LoraRowProduct.Args<BFloat16>>(ref args), map);
    }

    private static void ColumnProduct<T>(ComputeDevice device, LoraColumnProduct.Args<T> args, ArrayView<float> destination)
        where T : unmanaged
    {
        if (typeof(T) == typeof(float))
            LoraColumnProduct.Launch<float, F32>(device, Unsafe.As<LoraColumnProduct.Args<T>, LoraColumnProduct.Args<float>>(ref args), destination);
        else if (typeof(T) == typeof(DeviceHalf))
            LoraColumnProduct.Launch<DeviceHalf, F16>(device, Unsafe.As<LoraColumnProduct.Args<T>, LoraColumnProduct.Args<DeviceHalf>>(ref args), destination);
        else
            LoraColumnProduct.Launch<BFloat16, BF16>(device, Unsafe.As<LoraColumnProduct.Args<T>, LoraColumnProduct.Args<BFloat16>>(ref args), destination);
    }

    // ---- validation ----

    private static string Shape(ReadOnlySpan<nint> lengths) => "[" + string.Join(", ", lengths.ToArray()) + "]";

    private static (int Rows, int Columns) Matrix<T>(ReadOnlyDeviceTensorSpan<T> span, string name, ComputeDevice device) where T : unmanaged
    {
        Require.Supported<T>(name);
        if (span.IsEmptyView) throw new ArgumentException($"{name} is a default (empty) view.", name);
        Require.SameDevice(device, span.Device, name);
        Require.Rank(span.Rank, 2, name, span.Lengths);
        Require.Dense(span, name);
        if (span.Lengths[0] < 1 || span.Lengths[1] < 1 || span.Lengths[0] > int.MaxValue || span.Lengths[1] > int.MaxValue)
            throw new ArgumentException($"{name} has lengths {Shape(span.Lengths)}; both must be in 1…{int.MaxValue}.", name);
        return ((int)span.Lengths[0], (int)span.Lengths[1]);
    }

    private static void Input<T>(ReadOnlyDeviceTensorSpan<T> span, string name, ComputeDevice device, int rows, int columns) where T : unmanaged
    {
        var (r, c) = Matrix(span, name, device);
        if (r != rows || c != columns)
            throw new ArgumentException($"{name} has lengths {Shape(span.Lengths)} but [{rows}, {columns}] is required.", name);
    }

    private static void Output<T>(DeviceTensorSpan<T> span, string name, ComputeDevice device, int rows, int columns) where T : unmanaged =>
        Input(span.AsReadOnly(), name, device, rows, columns);

    private static void RequireRank(int r, string name, ReadOnlySpan<nint> lengths)
    {
        if (r > LoraAdapterSet<float>.MaxSupportedRank)
            throw new ArgumentOutOfRangeException(name, $"{name} has lengths {Shape(lengths)}: rank {r} exceeds {LoraAdapterSet<float>.MaxSupportedRank}.");
    }

    private static void RequireFinite(float value, string name)
    {
        if (!float.IsFinite(value)) throw new ArgumentOutOfRangeException(name, value, $"{name} must be finite.");
    }

    private static void RequireAdapters<T>(LoraAdapterSet<T> adapters, ComputeDevice device, int k, string name) where T : unmanaged
    {
        adapters.ThrowIfDisposed();
        Require.SameDevice(device, adapters.Device, name);
        if (adapters.InFeatures != k)
            throw new ArgumentException($"{name} has K = {adapters.InFeatures} in-features but the input has {k} columns.", name);
    }
}
