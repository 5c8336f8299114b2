using ILGPU;
using ILGPU.Runtime;
using Kernels.Cuda.Primitives;
using Kernels.Engine;
using Kernels.Tensors;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Dense;

public static partial class Dense
{
    /// <summary>
    /// y = W·x for a single token (batch-1 decoding): <paramref name="w"/> is M×K (<c>Linear.weight</c> layout),
    /// <paramref name="x"/> has K elements, <paramref name="y"/> M. f16 or bf16, f32 accumulation, any M, K ≥ 1.
    /// Enqueued on the device's stream.
    /// </summary>
    public static void Gemv<T>(ReadOnlyDeviceTensorSpan<T> w, ReadOnlyDeviceTensorSpan<T> x, DeviceTensorSpan<T> y)
        where T : unmanaged => Gemv(w, x, null, y);

    /// <summary>y = W·x + bias for a single token; <paramref name="bias"/> has M elements or is null (see the overload without bias).</summary>
    public static void Gemv<T>(ReadOnlyDeviceTensorSpan<T> w, ReadOnlyDeviceTensorSpan<T> x,
        ReadOnlyDeviceTensorSpan<T>? bias, DeviceTensorSpan<T> y) where T : unmanaged =>
        Gemv(w, x, bias, y, forceScalarLoads: false);

    internal static void Gemv<T>(ReadOnlyDeviceTensorSpan<T> w, ReadOnlyDeviceTensorSpan<T> x,
        ReadOnlyDeviceTensorSpan<T>? bias, DeviceTensorSpan<T> y, bool forceScalarLoads) where T : unmanaged
    {
        RequireHalfPrecision<T>(nameof(w));
        CheckOperand(w, nameof(w));
        CheckOperand(x, nameof(x));
        Require.Rank(w.Rank, 2, nameof(w), w.Lengths);
        Require.Rank(x.Rank, 1, nameof(x), x.Lengths);
        if (y.IsEmptyView) throw new ArgumentException("y is a default (empty) view.", nameof(y));
        Require.Rank(y.Rank, 1, nameof(y), y.Lengths);
        nint m = w.Lengths[0], k = w.Lengths[1];
        Require.Shape(x.Lengths, [k], nameof(x));
        Require.Shape(y.Lengths, [m], nameof(y));
        Require.Dense(y, nameof(y));
        Require.SameDevice(w.Device, x.Device, nameof(x));
        Require.SameDevice(w.Device, y.Device, nameof(y));
        if (bias is { } b)
        {
            CheckOperand(b, nameof(bias));
            Require.Shape(b.Lengths, [m], nameof(bias));
            Require.SameDevice(w.Device, b.Device, nameof(bias));
        }
        if (k < 1) throw new ArgumentException($"w has lengths {TensorShape.Format(w.Lengths)}: K must be at least 1.", nameof(w));
        Require.Disjoint(Footprint.Of(y, nameof(y)), Footprint.Of(w, nameof(w)), Footprint.Of(x, nameof(x)), Footprint.Of(bias, nameof(bias)));
        CheckInt(1, m, k);
        if (m == 0) return;

        var device = w.Device;
        var wm = Matrix16.From(w, forceScalarLoads);
        var xh = x.View.AsContiguous().SubView(0, x.FlattenedLength).Cast<ushort>();
        // x is read as 16-byte chunks only on the aligned path, which requires K % 8 == 0 and an aligned base.
        bool xAligned = wm.Aligned != 0 && (xh.LoadEffectiveAddressAsPtr().ToInt64() & 15) == 0;
        var wUse = xAligned ? wm : Matrix16.From(w, forceScalar: true);
        var x4 = xAligned ? xh.Cast<UInt4>() : xh.SubView(0, 0).Cast<UInt4>();
        var yv = y.View.AsContiguous().SubView(0, y.FlattenedLength);
        var bv = bias is { } bb ? bb.View.AsContiguous().SubView(0, bb.FlattenedLength) : yv;
        int hasBias = bias.HasValue ? 1 : 0;
        if (typeof(T) == typeof(DeviceHalf))
            GemvKernel.Launch<DeviceHalf, F16, F16Mma>(device, wUse, x4, xh, bv.Cast<DeviceHalf>(), hasBias, yv.Cast<DeviceHalf>());
        else
            GemvKernel.Launch<BFloat16, BF16, BF16Mma>(device, wUse, x4, xh, bv.Cast<BFloat16>(), hasBias, yv.Cast<BFloat16>());
    }
}
