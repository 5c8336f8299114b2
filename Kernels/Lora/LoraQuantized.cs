using Kernels.Engine;
using Kernels.Quantization;
using Kernels.Runtime;
using Kernels.Tensors;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Lora;

public static partial class Lora
{
    /// <summary>
    /// QLoRA forward: <see cref="Forward{T}"/> with the base weight W stored block-wise quantized (NF4, FP4 or 8-bit,
    /// plain or nested absmax). The engine's weight tiles are dequantized in shared memory by a producer, so W is read
    /// at its compressed size and never expanded in memory.
    /// </summary>
    /// <param name="x">Tokens X, M×K (f16 or bf16).</param>
    /// <param name="w">Quantized W: N·K elements, row-major N×K (as <c>Linear.weight</c> flattened).</param>
    /// <param name="a">A, r×K.</param>
    /// <param name="b">B, N×r (gives N).</param>
    /// <param name="bias">Bias (N elements) or null.</param>
    /// <param name="alpha">α.</param>
    /// <param name="dropout">Dropout on the adapter input.</param>
    /// <param name="s">Destination S, M×r f32, saved for <see cref="QuantizedBackward{T}"/>; null for inference (S
    /// then lives in a scratch buffer the library leases for the call).</param>
    /// <param name="y">Destination Y, M×N.</param>
    public static void QuantizedForward<T>(ReadOnlyDeviceTensorSpan<T> x, BlockwiseQuantized w, ReadOnlyDeviceTensorSpan<T> a,
        ReadOnlyDeviceTensorSpan<T> b, ReadOnlyDeviceTensorSpan<T>? bias, float alpha, LoraDropout dropout,
        DeviceTensorSpan<float>? s, DeviceTensorSpan<T> y) where T : unmanaged
    {
        RequireHalfPrecision<T>(nameof(x));
        ArgumentNullException.ThrowIfNull(w);
        var device = x.Device;
        var (m, k) = Matrix(x, nameof(x), device);
        var (r, ka) = Matrix(a, nameof(a), device);
        RequireRank(r, nameof(a), a.Lengths);
        if (ka != k) throw new ArgumentException($"a has lengths {Shape(a.Lengths)} but x {Shape(x.Lengths)} needs {k} columns.", nameof(a));
        var (n, rb) = Matrix(b, nameof(b), device);
        if (rb != r) throw new ArgumentException($"b has lengths {Shape(b.Lengths)} but a {Shape(a.Lengths)} has rank {r}.", nameof(b));
        RequireQuantized(w, device, n, k);
        Bias(bias, device, n);
        RequireFinite(alpha, nameof(alpha));
        OptionalOutput(s, nameof(s), device, m, r);
        Output(y, nameof(y), device, m, n);
        RequireForwardDisjoint(s, y, [Footprint.Of(x, nameof(x)), Footprint.Of(a, nameof(a)), Footprint.Of(b, nameof(b)),
            Footprint.Of(bias, nameof(bias)), .. w.Footprints()]);

        using var scratch = RentS(s, device, m, r);
        var sv = s is { } given ? given.View.AsContiguous() : scratch.View;
        EnqueueShrink(device, x.View.AsContiguous(), m, k, a.View.AsContiguous(), new SingleLoraAdapter(r, 1f), dropout, sv, r);
        var xm = Matrix16.From(x);
        var yv = y.View.AsContiguous();
        var bv = b.View.AsContiguous();
        ILGPU.ArrayView<T>? biasView = bias is { } bb ? bb.View.AsContiguous() : null;
        var map = new SingleLoraAdapter(r, alpha);
        if (typeof(T) == typeof(DeviceHalf))
            Engine<F16Mma, LoraQuantizedWeightProducer<F16Mma>, LoraExpandEpilogue<DeviceHalf, F16, SingleLoraAdapter>>(device,
                new LoraQuantizedWeightProducer<F16Mma>(w, n, k, 0), xm,
                new(yv.Cast<DeviceHalf>(), biasView?.Cast<DeviceHalf>(), n, sv, r, bv.Cast<DeviceHalf>(), map), n, m, k);
        else
            Engine<BF16Mma, LoraQuantizedWeightProducer<BF16Mma>, LoraExpandEpilogue<BFloat16, BF16, SingleLoraAdapter>>(device,
                new LoraQuantizedWeightProducer<BF16Mma>(w, n, k, 0), xm,
                new(yv.Cast<BFloat16>(), biasView?.Cast<BFloat16>(), n, sv, r, bv.Cast<BFloat16>(), map), n, m, k);
    }

    /// <summary>
    /// QLoRA backward: <see cref="Backward{T}"/> with the quantized base W of <see cref="QuantizedForward{T}"/> (W is
    /// frozen, so only dX needs it: dX = dY·W + mask ⊙ (dS·A) / (1 − p), with Wᵀ tiles dequantized in shared memory).
    /// </summary>
    /// <param name="dy">Upstream gradient dY, M×N (f16 or bf16).</param>
    /// <param name="x">Tokens X, M×K.</param>
    /// <param name="w">Quantized W (N·K elements, N×K row-major).</param>
    /// <param name="a">A, r×K.</param>
    /// <param name="b">B, N×r.</param>
    /// <param name="s">S from the forward, M×r f32.</param>
    /// <param name="alpha">α.</param>
    /// <param name="dropout">The forward's dropout.</param>
    /// <param name="ds">Destination dS, M×r f32.</param>
    /// <param name="da">Destination dA, r×K f32.</param>
    /// <param name="db">Destination dB, N×r f32.</param>
    /// <param name="dx">Destination dX, M×K.</param>
    public static void QuantizedBackward<T>(ReadOnlyDeviceTensorSpan<T> dy, ReadOnlyDeviceTensorSpan<T> x, BlockwiseQuantized w,
        ReadOnlyDeviceTensorSpan<T> a, ReadOnlyDeviceTensorSpan<T> b, ReadOnlyDeviceTensorSpan<float> s, float alpha, LoraDropout dropout,
        DeviceTensorSpan<float> ds, DeviceTensorSpan<float> da, DeviceTensorSpan<float> db, DeviceTensorSpan<T> dx) where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(w);
        var (device, m, n, k, r) = CheckBackward(dy, x, a, b, s, alpha, ds, da, db, dx,
            x.Rank == 2 && x.Lengths[1] > 0 && w.Length % x.Lengths[1] == 0 ? w.Length / x.Lengths[1] : -1);
        RequireQuantized(w, device, n, k);
        RequireBackwardDisjoint(ds, da, db, dx, w.Footprints());
        var dsv = EnqueueAdapterGradients(device, dy, x, b, s, alpha, dropout, ds, da, db, m, n, k, r);
        var dym = Matrix16.From(dy);
        var dxv = dx.View.AsContiguous();
        var av = a.View.AsContiguous();
        if (typeof(T) == typeof(DeviceHalf))
            Engine<F16Mma, LoraQuantizedWeightProducer<F16Mma>, LoraDxEpilogue<DeviceHalf, F16>>(device,
                new LoraQuantizedWeightProducer<F16Mma>(w, n, k, 1), dym,
                new(dxv.Cast<DeviceHalf>(), k, dsv, r, av.Cast<DeviceHalf>(), dropout), k, m, n);
        else
            Engine<BF16Mma, LoraQuantizedWeightProducer<BF16Mma>, LoraDxEpilogue<BFloat16, BF16>>(device,
                new LoraQuantizedWeightProducer<BF16Mma>(w, n, k, 1), dym,
                new(dxv.Cast<BFloat16>(), k, dsv, r, av.Cast<BFloat16>(), dropout), k, m, n);
    }

    private static void RequireQuantized(BlockwiseQuantized w, ComputeDevice device, int n, int k)
    {
        w.ThrowIfDisposed();
        Require.SameDevice(device, w.Device, nameof(w));
        if (w.Length != (long)n * k)
            throw new ArgumentException($"w holds {w.Length} quantized elements but an N×K = {n}×{k} weight needs {(long)n * k}.", nameof(w));
    }
}
