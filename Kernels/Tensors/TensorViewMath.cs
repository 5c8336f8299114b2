using ILGPU;
using ILGPU.Runtime;

namespace Kernels.Tensors;

/// <summary>Index arithmetic shared by the two view types.</summary>
internal static class TensorViewMath
{
    public static (ArrayView1D<T, Stride1D.Dense> View, nint[] Lengths, nint[] Strides) Slice<T>(
        ArrayView1D<T, Stride1D.Dense> view, nint[] lengths, nint[] strides, ReadOnlySpan<Range> ranges) where T : unmanaged
    {
        if (ranges.Length > lengths.Length)
            throw new ArgumentException($"{ranges.Length} ranges for a tensor of rank {lengths.Length}.", nameof(ranges));
        var newLengths = (nint[])lengths.Clone();
        long offset = 0;
        for (int d = 0; d < ranges.Length; d++)
        {
            int len = checked((int)lengths[d]);
            var (start, count) = ranges[d].GetOffsetAndLength(len); // throws ArgumentOutOfRangeException when outside
            newLengths[d] = count;
            offset += (long)start * strides[d];
        }
        long extent = TensorShape.Extent(newLengths, strides);
        var sub = extent == 0 ? view.SubView(0, 0) : view.SubView(offset, extent);
        return (sub, newLengths, (nint[])strides.Clone());
    }

    public static nint[] Reshape(nint[] lengths, nint[] strides, ReadOnlySpan<nint> newLengths)
    {
        if (!TensorShape.IsDense(lengths, strides))
            throw new InvalidOperationException("Only a dense view can be reshaped.");
        if (TensorShape.Product(newLengths) != TensorShape.Product(lengths))
            throw new ArgumentException(
                $"Cannot reshape {TensorShape.Format(lengths)} to {TensorShape.Format(newLengths)}: element counts differ.", nameof(newLengths));
        return newLengths.ToArray();
    }

    public static void RequireDense<T>(ReadOnlyDeviceTensorSpan<T> span, string name) where T : unmanaged
    {
        if (span.IsEmptyView) throw new ArgumentException($"{name} is a default (empty) view.", name);
        RequireLive(span, name);
        if (!span.IsDense)
            throw new ArgumentException($"{name} must be a dense row-major view, got lengths {TensorShape.Format(span.Lengths)} strides {TensorShape.Format(span.Strides)}.", name);
    }

    /// <summary>Refuses a view whose tensor has been disposed (its memory may already belong to another allocation).</summary>
    public static void RequireLive<T>(ReadOnlyDeviceTensorSpan<T> span, string name) where T : unmanaged
    {
        if (span.IsDisposed)
            throw new ObjectDisposedException($"DeviceTensor<{typeof(T).Name}>",
                $"{name} is a view of a DeviceTensor<{typeof(T).Name}>{TensorShape.Format(span.Lengths)} that has been disposed.");
    }

    public static void Gather<T>(ReadOnlySpan<T> raw, nint[] lengths, nint[] strides, Span<T> destination)
    {
        int rank = lengths.Length;
        Span<nint> index = stackalloc nint[rank];
        long count = TensorShape.Product(lengths);
        for (long i = 0; i < count; i++)
        {
            long src = 0;
            for (int d = 0; d < rank; d++) src += (long)index[d] * strides[d];
            destination[(int)i] = raw[(int)src];
            for (int d = rank - 1; d >= 0; d--)
            {
                if (++index[d] < lengths[d]) break;
                index[d] = 0;
            }
        }
    }
}
