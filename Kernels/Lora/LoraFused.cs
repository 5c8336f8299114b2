using ILGPU;
using Kernels.Dense;
using Kernels.Engine;
using Kernels.Runtime;
using Kernels.Tensors;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Lora;

public static partial class Lora
{
    /// <summary>
    /// Fused LoRA forward: S = drop(X)·Aᵀ (shrink kernel), then Y = X·Wᵀ + α·S·Bᵀ (+ bias) in one tile-engine GEMM
    /// whose epilogue adds the LoRA term to each output tile before its only store. The base GEMM reads X undropped
    /// (PEFT: dropout applies to the adapter branch only). S is written for the backward.
    /// </summary>
    /// <param name="x">Tokens X, M×K (f16 or bf16).</param>
    /// <param name="w">Base weight W, N×K.</param>
    /// <param name="a">A, r×K (r ≤ 128).</param>
    /// <param name="b">B, N×r.</param>
    /// <param name="bias">Bias (N elements) or null.</param>
    /// <param name="alpha">α (PEFT's lora_alpha / r).</param>
    /// <param name="dropout">Dropout on the adapter input (<c>default</c> for none).</param>
    /// <param name="s">Destination S = drop(X)·Aᵀ, M×r f32, saved for <see cref="Backward{T}"/>; null for inference
    /// (S then lives in a scratch buffer the library leases for the call).</param>
    /// <param name="y">Destination Y, M×N.</param>
    public static void Forward<T>(ReadOnlyDeviceTensorSpan<T> x, ReadOnlyDeviceTensorSpan<T> w, ReadOnlyDeviceTensorSpan<T> a,
        ReadOnlyDeviceTensorSpan<T> b, ReadOnlyDeviceTensorSpan<T>? bias, float alpha, LoraDropout dropout,
        DeviceTensorSpan<float>? s, DeviceTensorSpan<T> y) where T : unmanaged
    {
        RequireHalfPrecision<T>(nameof(x));
        var device = x.Device;
        var (m, k) = Matrix(x, nameof(x), device);
        var (n, kw) = Matrix(w, nameof(w), device);
        if (kw != k) throw new ArgumentException($"w has lengths {Shape(w.Lengths)} but x {Shape(x.Lengths)} needs {k} columns.", nameof(w));
        var (r, ka) = Matrix(a, nameof(a), device);
        RequireRank(r, nameof(a), a.Lengths);
        if (ka != k) throw new ArgumentException($"a has lengths {Shape(a.Lengths)} but x {Shape(x.Lengths)} needs {k} columns.", nameof(a));
        Input(b, nameof(b), device, n, r);
        Bias(bias, device, n);
        RequireFinite(alpha, nameof(alpha));
        OptionalOutput(s, nameof(s), device, m, r);
        Output(y, nameof(y), device, m, n);
        RequireForwardDisjoint(s, y, Footprint.Of(x, nameof(x)), Footprint.Of(w, nameof(w)), Footprint.Of(a, nameof(a)),
            Footprint.Of(b, nameof(b)), Footprint.Of(bias, nameof(bias)));

        using var scratch = RentS(s, device, m, r);
        var sv = s is { } given ? given.View.AsContiguous() : scratch.View;
        EnqueueShrink(device, x.View.AsContiguous(), m, k, a.View.AsContiguous(), new SingleLoraAdapter(r, 1f), dropout, sv, r);
        EnqueueExpand(device, x, w, bias, sv, r, b.View.AsContiguous(), new SingleLoraAdapter(r, alpha), y, m, n, k);
    }

    /// <summary>
    /// Multi-adapter forward (Punica SGMV semantics): Y = X·Wᵀ (+ bias) + α_a·(drop(X)·A_aᵀ)·B_aᵀ with a = the adapter
    /// of each token row in <paramref name="batch"/> (−1: base only). One shrink pass over X, then one base GEMM that
    /// reads W once for every segment; tiles straddling segments look the adapter up per row (no padding, no copies
    /// of X).
    /// </summary>
    /// <param name="x">Tokens X, M×K (f16 or bf16).</param>
    /// <param name="w">Base weight W, N×K.</param>
    /// <param name="bias">Bias (N elements) or null.</param>
    /// <param name="adapters">The adapter pool (K in, N out).</param>
    /// <param name="batch">The adapter of every row (M rows).</param>
    /// <param name="dropout">Dropout on the adapter input (<c>default</c> for none).</param>
    /// <param name="s">Destination S, M × <see cref="LoraAdapterSet{T}.MaxRank"/> f32 (row m holds its adapter's r_a
    /// values, then zeros); null for inference (S then lives in a scratch buffer the library leases for the call).</param>
    /// <param name="y">Destination Y, M×N.</param>
    public static void SegmentedForward<T>(ReadOnlyDeviceTensorSpan<T> x, ReadOnlyDeviceTensorSpan<T> w, ReadOnlyDeviceTensorSpan<T>? bias,
        LoraAdapterSet<T> adapters, LoraBatch batch, LoraDropout dropout, DeviceTensorSpan<float>? s, DeviceTensorSpan<T> y)
        where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(adapters);
        ArgumentNullException.ThrowIfNull(batch);
        RequireHalfPrecision<T>(nameof(x));
        var device = x.Device;
        var (m, k) = Matrix(x, nameof(x), device);
        var (n, kw) = Matrix(w, nameof(w), device);
        if (kw != k) throw new ArgumentException($"w has lengths {Shape(w.Lengths)} but x {Shape(x.Lengths)} needs {k} columns.", nameof(w));
        RequireAdapters(adapters, device, k, nameof(adapters));
        if (adapters.OutFeatures != n)
            throw new ArgumentException($"adapters have N = {adapters.OutFeatures} out-features but w {Shape(w.Lengths)} has {n}.", nameof(adapters));
        batch.Validate(adapters, m, nameof(batch));
        Bias(bias, device, n);
        OptionalOutput(s, nameof(s), device, m, adapters.MaxRank);
        Output(y, nameof(y), device, m, n);
        RequireForwardDisjoint(s, y, Footprint.Of(x, nameof(x)), Footprint.Of(w, nameof(w)), Footprint.Of(bias, nameof(bias)));

        var map = adapters.Map(batch.Table);
        using var scratch = RentS(s, device, m, adapters.MaxRank);
        var sv = s is { } given ? given.View.AsContiguous() : scratch.View;
        EnqueueShrink(device, x.View.AsContiguous(), m, k, adapters.APool, map, dropout, sv, adapters.MaxRank);
        EnqueueExpand(device, x, w, bias, sv, adapters.MaxRank, adapters.BPool, map, y, m, n, k);
    }

    /// <summary>
    /// dX = dY·W + mask ⊙ (dS·A) / (1 − p): one tile-engine GEMM over dY·W whose epilogue adds the masked LoRA term
    /// (mask regenerated from the forward's seed) before the only store of dX.
    /// </summary>
    /// <param name="dy">Upstream gradient dY, M×N (f16 or bf16).</param>
    /// <param name="w">Base weight W, N×K.</param>
    /// <param name="ds">dS from <see cref="BackwardDsDb{T}"/>, M×r f32.</param>
    /// <param name="a">A, r×K.</param>
    /// <param name="dropout">The forward's dropout.</param>
    /// <param name="dx">Destination dX, M×K.</param>
    public static void BackwardDx<T>(ReadOnlyDeviceTensorSpan<T> dy, ReadOnlyDeviceTensorSpan<T> w, ReadOnlyDeviceTensorSpan<float> ds,
        ReadOnlyDeviceTensorSpan<T> a, LoraDropout dropout, DeviceTensorSpan<T> dx) where T : unmanaged
    {
        RequireHalfPrecision<T>(nameof(dy));
        var device = dy.Device;
        var (m, n) = Matrix(dy, nameof(dy), device);
        var (nw, k) = Matrix(w, nameof(w), device);
        if (nw != n) throw new ArgumentException($"w has lengths {Shape(w.Lengths)} but dy {Shape(dy.Lengths)} needs {n} rows.", nameof(w));
        var (r, ka) = Matrix(a, nameof(a), device);
        RequireRank(r, nameof(a), a.Lengths);
        if (ka != k) throw new ArgumentException($"a has lengths {Shape(a.Lengths)} but w {Shape(w.Lengths)} needs {k} columns.", nameof(a));
        Input(ds, nameof(ds), device, m, r);
        Output(dx, nameof(dx), device, m, k);
        Require.Disjoint(Footprint.Of(dx, nameof(dx)), Footprint.Of(dy, nameof(dy)), Footprint.Of(w, nameof(w)), Footprint.Of(ds, nameof(ds)),
            Footprint.Of(a, nameof(a)));
        EnqueueDx(device, dy, w, ds.View.AsContiguous(), r, a.View.AsContiguous(), dropout, dx, m, n, k);
    }

    /// <summary>
    /// The whole LoRA backward for an upstream gradient dY: dS = α·dY·B and dB = α·dYᵀ·S, dA = dSᵀ·drop(X), and
    /// dX = dY·W + mask ⊙ (dS·A) / (1 − p). Nothing but S and the seed is kept from the forward (no mask, no drop(X)).
    /// f32 accumulation; bit-identical results from run to run.
    /// </summary>
    /// <param name="dy">Upstream gradient dY, M×N (f16 or bf16).</param>
    /// <param name="x">Tokens X, M×K, as given to the forward.</param>
    /// <param name="w">Base weight W, N×K.</param>
    /// <param name="a">A, r×K.</param>
    /// <param name="b">B, N×r.</param>
    /// <param name="s">S from <see cref="Forward{T}"/>, M×r f32.</param>
    /// <param name="alpha">α.</param>
    /// <param name="dropout">The forward's dropout.</param>
    /// <param name="ds">Destination dS, M×r f32.</param>
    /// <param name="da">Destination dA, r×K f32.</param>
    /// <param name="db">Destination dB, N×r f32.</param>
    /// <param name="dx">Destination dX, M×K.</param>
    public static void Backward<T>(ReadOnlyDeviceTensorSpan<T> dy, ReadOnlyDeviceTensorSpan<T> x, ReadOnlyDeviceTensorSpan<T> w,
        ReadOnlyDeviceTensorSpan<T> a, ReadOnlyDeviceTensorSpan<T> b, ReadOnlyDeviceTensorSpan<float> s, float alpha, LoraDropout dropout,
        DeviceTensorSpan<float> ds, DeviceTensorSpan<float> da, DeviceTensorSpan<float> db, DeviceTensorSpan<T> dx) where T : unmanaged
    {
        var (device, m, n, k, r) = CheckBackward(dy, x, a, b, s, alpha, ds, da, db, dx, WeightRows(w));
        Input(w, nameof(w), device, n, k);
        RequireBackwardDisjoint(ds, da, db, dx, Footprint.Of(w, nameof(w)));
        var dsv = EnqueueAdapterGradients(device, dy, x, b, s, alpha, dropout, ds, da, db, m, n, k, r);
        EnqueueDx(device, dy, w, dsv, r, a.View.AsContiguous(), dropout, dx, m, n, k);
    }

    /// <summary>
    /// Validates everything a backward pass needs except the base weight (dense or quantized: the caller checks it
    /// against the returned N and K) and returns the device and the sizes.
    /// </summary>
    private static (ComputeDevice Device, int M, int N, int K, int R) CheckBackward<T>(ReadOnlyDeviceTensorSpan<T> dy,
        ReadOnlyDeviceTensorSpan<T> x, ReadOnlyDeviceTensorSpan<T> a, ReadOnlyDeviceTensorSpan<T> b, ReadOnlyDeviceTensorSpan<float> s,
        float alpha, DeviceTensorSpan<float> ds, DeviceTensorSpan<float> da, DeviceTensorSpan<float> db, DeviceTensorSpan<T> dx,
        long weightRows) where T : unmanaged
    {
        RequireHalfPrecision<T>(nameof(dy));
        var device = dy.Device;
        var (m, n) = Matrix(dy, nameof(dy), device);
        var (mx, k) = Matrix(x, nameof(x), device);
        if (mx != m) throw new ArgumentException($"x has lengths {Shape(x.Lengths)} but dy {Shape(dy.Lengths)} needs {m} rows.", nameof(x));
        var (r, ka) = Matrix(a, nameof(a), device);
        RequireRank(r, nameof(a), a.Lengths);
        if (ka != k) throw new ArgumentException($"a has lengths {Shape(a.Lengths)} but x {Shape(x.Lengths)} needs {k} columns.", nameof(a));
        // b and the base weight agree on N but dy does not: dy is the odd one out.
        if (!b.IsEmptyView && b.Rank == 2 && b.Lengths[0] != n && b.Lengths[0] == weightRows)
            throw new ArgumentException($"dy has lengths {Shape(dy.Lengths)} but b {Shape(b.Lengths)} and the base weight have N = {weightRows}.", nameof(dy));
        Input(b, nameof(b), device, n, r);
        Input(s, nameof(s), device, m, r);
        RequireFinite(alpha, nameof(alpha));
        Output(ds, nameof(ds), device, m, r);
        Output(da, nameof(da), device, r, k);
        Output(db, nameof(db), device, n, r);
        Output(dx, nameof(dx), device, m, k);
        var inputs = new[] { Footprint.Of(dy, nameof(dy)), Footprint.Of(x, nameof(x)), Footprint.Of(a, nameof(a)),
            Footprint.Of(b, nameof(b)), Footprint.Of(s, nameof(s)) };
        RequireBackwardDisjoint(ds, da, db, dx, inputs);
        return (device, m, n, k, r);
    }

    private static long WeightRows<T>(ReadOnlyDeviceTensorSpan<T> w) where T : unmanaged => w.Rank == 2 ? w.Lengths[0] : -1;

    /// <summary>S and Y must not overlap each other or any input (the expand reads S while Y is written).</summary>
    private static void RequireForwardDisjoint<T>(DeviceTensorSpan<float>? s, DeviceTensorSpan<T> y, params Footprint[] inputs) where T : unmanaged
    {
        if (s is not { } given)
        {
            Require.Disjoint(Footprint.Of(y, nameof(y)), inputs);
            return;
        }
        var fs = Footprint.Of(given, nameof(s));
        Require.Disjoint(fs, inputs);
        Require.Disjoint(Footprint.Of(y, nameof(y)), [fs, .. inputs]);
    }

    /// <summary>S of an inference forward (no S given): M×r floats of a per-device scratch buffer.</summary>
    private static readonly ScratchPool<float> InferenceS = new("LoRA's inference S");

    /// <summary>A lease of M×r floats when <paramref name="s"/> is null; an empty lease otherwise.</summary>
    private static ScratchLease<float> RentS(DeviceTensorSpan<float>? s, ComputeDevice device, int m, int r) =>
        s is null ? InferenceS.Rent(device, (long)m * r) : default;

    private static void OptionalOutput(DeviceTensorSpan<float>? s, string name, ComputeDevice device, int rows, int columns)
    {
        if (s is { } given) Output(given, name, device, rows, columns);
    }

    /// <summary>The four gradients must not overlap each other or any of <paramref name="inputs"/>.</summary>
    private static void RequireBackwardDisjoint<T>(DeviceTensorSpan<float> ds, DeviceTensorSpan<float> da, DeviceTensorSpan<float> db,
        DeviceTensorSpan<T> dx, params Footprint[] inputs) where T : unmanaged
    {
        var outputs = new[] { Footprint.Of(ds, nameof(ds)), Footprint.Of(da, nameof(da)), Footprint.Of(db, nameof(db)), Footprint.Of(dx, nameof(dx)) };
        for (int i = 0; i < outputs.Length; i++)
        {
            Require.Disjoint(outputs[i], inputs);
            Require.Disjoint(outputs[i], outputs.AsSpan(i + 1));
        }
    }

    /// <summary>Enqueues dS, dB and dA (the adapter's gradients, independent of how W is stored); returns dS for dX.</summary>
    private static ArrayView<float> EnqueueAdapterGradients<T>(ComputeDevice device, ReadOnlyDeviceTensorSpan<T> dy,
        ReadOnlyDeviceTensorSpan<T> x, ReadOnlyDeviceTensorSpan<T> b, ReadOnlyDeviceTensorSpan<float> s, float alpha, LoraDropout dropout,
        DeviceTensorSpan<float> ds, DeviceTensorSpan<float> da, DeviceTensorSpan<float> db, int m, int n, int k, int r)
        where T : unmanaged
    {
        var dsv = ds.View.AsContiguous();
        EnqueueDsDb(device, dy.View.AsContiguous(), m, n, b.View.AsContiguous(), s.View.AsContiguous(), r, alpha, dsv, db.View.AsContiguous());
        EnqueueDa(device, dsv, x.View.AsContiguous(), m, k, r, dropout, da.View.AsContiguous());
        return dsv;
    }

    // ---- engine plumbing (arguments already validated) ----

    private static void EnqueueExpand<T, TMap>(ComputeDevice device, ReadOnlyDeviceTensorSpan<T> x, ReadOnlyDeviceTensorSpan<T> w,
        ReadOnlyDeviceTensorSpan<T>? bias, ArrayView<float> s, int sStride, ArrayView<T> b, TMap map, DeviceTensorSpan<T> y, int m, int n, int k)
        where T : unmanaged where TMap : struct, ILoraAdapterMap
    {
        var producer = new DenseWeightProducer(Matrix16.From(w));
        var xm = Matrix16.From(x);
        var yv = y.View.AsContiguous();
        ArrayView<T>? bv = bias is { } bb ? bb.View.AsContiguous() : null;
        if (typeof(T) == typeof(DeviceHalf))
            Engine<F16Mma, DenseWeightProducer, LoraExpandEpilogue<DeviceHalf, F16, TMap>>(device, producer, xm,
                new(yv.Cast<DeviceHalf>(), bv?.Cast<DeviceHalf>(), n, s, sStride, b.Cast<DeviceHalf>(), map), n, m, k);
        else
            Engine<BF16Mma, DenseWeightProducer, LoraExpandEpilogue<BFloat16, BF16, TMap>>(device, producer, xm,
                new(yv.Cast<BFloat16>(), bv?.Cast<BFloat16>(), n, s, sStride, b.Cast<BFloat16>(), map), n, m, k);
    }

    private static void EnqueueDx<T>(ComputeDevice device, ReadOnlyDeviceTensorSpan<T> dy, ReadOnlyDeviceTensorSpan<T> w,
        ArrayView<float> ds, int r, ArrayView<T> a, LoraDropout dropout, DeviceTensorSpan<T> dx, int m, int n, int k) where T : unmanaged
    {
        var producer = new LoraTransposedWeightProducer(Matrix16.From(w));
        var dym = Matrix16.From(dy);
        var dxv = dx.View.AsContiguous();
        if (typeof(T) == typeof(DeviceHalf))
            Engine<F16Mma, LoraTransposedWeightProducer, LoraDxEpilogue<DeviceHalf, F16>>(device, producer, dym,
                new(dxv.Cast<DeviceHalf>(), k, ds, r, a.Cast<DeviceHalf>(), dropout), k, m, n);
        else
            Engine<BF16Mma, LoraTransposedWeightProducer, LoraDxEpilogue<BFloat16, BF16>>(device, producer, dym,
                new(dxv.Cast<BFloat16>(), k, ds, r, a.Cast<BFloat16>(), dropout), k, m, n);
    }

    /// <summary>
    /// One engine GEMM in engine coordinates (M weight rows, N tokens): the skinny tile for ≤ 16 tokens, the wide one
    /// otherwise, and split-K (f32 partials, ordered reduction, then the same epilogue) only when the tiles would not
    /// fill the GPU — the dense GEMM's own rule.
    /// </summary>
    private static void Engine<TMma, TProducer, TEpilogue>(ComputeDevice device, in TProducer producer, in Matrix16 activations,
        in TEpilogue epilogue, int m, int n, int k)
        where TMma : struct, IMmaKind where TProducer : struct, IWeightTileProducer where TEpilogue : struct, ITileEpilogue
    {
        if (n > TileShapes.TileN<SkinnyTile>()) Engine<WideTile, TMma, TProducer, TEpilogue>(device, producer, activations, epilogue, m, n, k);
        else Engine<SkinnyTile, TMma, TProducer, TEpilogue>(device, producer, activations, epilogue, m, n, k);
    }

    private static void Engine<TShape, TMma, TProducer, TEpilogue>(ComputeDevice device, in TProducer producer, in Matrix16 activations,
        in TEpilogue epilogue, int m, int n, int k)
        where TShape : struct, ITileShape where TMma : struct, IMmaKind where TProducer : struct, IWeightTileProducer
        where TEpilogue : struct, ITileEpilogue
    {
        var problem = GemmProblem.Create<TShape>(m, n, k, Dense.Dense.AutoSplits(device, GemmProblem.Create<TShape>(m, n, k)));
        if (problem.Splits == 1)
        {
            TileEngine.Launch<TShape, TMma, TProducer, TEpilogue>(device, producer, activations, epilogue, problem);
            return;
        }
        using var lease = SplitKWorkspace.Rent(device, (long)problem.Splits * n * m);
        var partials = lease.View;
        TileEngine.Launch<TShape, TMma, TProducer, SplitKPartialEpilogue>(device, producer, activations,
            new SplitKPartialEpilogue(partials, m, n), problem);
        SplitKReduction.Launch(device, partials, problem.Splits, m, n, epilogue);
    }

    private static void RequireHalfPrecision<T>(string name) where T : unmanaged
    {
        if (typeof(T) != typeof(DeviceHalf) && typeof(T) != typeof(BFloat16))
            throw new ArgumentException(
                $"{name}: the fused LoRA GEMMs run on tensor cores and take f16 (ILGPU.Half) or bf16 (Kernels.Tensors.BFloat16), not {typeof(T).Name}.", name);
    }

    private static void Bias<T>(ReadOnlyDeviceTensorSpan<T>? bias, ComputeDevice device, int n) where T : unmanaged
    {
        if (bias is not { } b) return;
        if (b.IsEmptyView) throw new ArgumentException("bias is a default (empty) view; pass null for no bias.", nameof(bias));
        Require.SameDevice(device, b.Device, nameof(bias));
        Require.Dense(b, nameof(bias));
        Require.Shape(b.Lengths, [n], nameof(bias));
    }
}
