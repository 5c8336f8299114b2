using ILGPU.Runtime;
using Kernels.Runtime;
using Kernels.Tensors;

namespace Kernels.LowRank;

/// <summary>Argument checks shared by the family's operations (on top of <see cref="Require"/>).</summary>
internal static class LowRankChecks
{
    /// <summary>A rank-2 view on <paramref name="device"/> whose last dimension is contiguous (rows may be strided).</summary>
    public static void Matrix<T>(ReadOnlyDeviceTensorSpan<T> span, ComputeDevice device, string name) where T : unmanaged
    {
        if (span.IsEmptyView) throw new ArgumentException($"{name} is a default (empty) view.", name);
        Require.Live(span, name);
        Require.Rank(span.Rank, 2, name, span.Lengths);
        Require.SameDevice(device, span.Device, name);
        if (span.Lengths[1] > 1 && span.Strides[1] != 1)
            throw new ArgumentException($"{name} must have a contiguous last dimension, got lengths {TensorShape.Format(span.Lengths)} strides {TensorShape.Format(span.Strides)}.", name);
        if (span.Lengths[0] > 1 && span.Strides[0] < span.Lengths[1])
            throw new ArgumentException($"{name} rows overlap: lengths {TensorShape.Format(span.Lengths)} strides {TensorShape.Format(span.Strides)}.", name);
        if (TensorShape.Extent(span.Lengths, span.Strides) >= int.MaxValue)
            throw new ArgumentOutOfRangeException(name, $"{name} spans {TensorShape.Extent(span.Lengths, span.Strides)} elements; at most {int.MaxValue - 1} are supported.");
    }

    public static void Matrix<T>(DeviceTensorSpan<T> span, ComputeDevice device, string name) where T : unmanaged =>
        Matrix(span.AsReadOnly(), device, name);

    public static void Finite(float value, string name)
    {
        if (!float.IsFinite(value)) throw new ArgumentOutOfRangeException(name, $"{name} must be finite, got {value}.");
    }

    public static void Shape2(ReadOnlySpan<nint> actual, long rows, long cols, string name) =>
        Require.Shape(actual, [(nint)rows, (nint)cols], name);
}
