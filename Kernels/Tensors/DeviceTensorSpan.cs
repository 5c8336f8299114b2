using System.Numerics.Tensors;
using ILGPU;
using ILGPU.Runtime;
using Kernels.Runtime;

namespace Kernels.Tensors;

/// <summary>
/// A writable, non-owning view of device memory with lengths and strides (in elements), in the spirit of
/// <see cref="TensorSpan{T}"/>. Operations write their results through these views.
/// </summary>
public readonly struct DeviceTensorSpan<T> where T : unmanaged
{
    // Same layout as the read-only view; this type only adds the right to write.
    private readonly ReadOnlyDeviceTensorSpan<T> view;

    internal DeviceTensorSpan(ComputeDevice device, ArrayView1D<T, Stride1D.Dense> view, nint[] lengths, nint[] strides, DeviceTensor<T> owner) =>
        this.view = new ReadOnlyDeviceTensorSpan<T>(device, view, lengths, strides, owner);

    private DeviceTensorSpan(ReadOnlyDeviceTensorSpan<T> view) => this.view = view;

    /// <summary>The device holding the memory.</summary>
    public ComputeDevice Device => view.Device;

    /// <summary>
    /// The underlying device memory, from the first element of the view to one past its last. For a dense view this
    /// is exactly the elements in row-major order.
    /// </summary>
    public ArrayView1D<T, Stride1D.Dense> View => view.View;

    /// <summary>Length of each dimension.</summary>
    public ReadOnlySpan<nint> Lengths => view.Lengths;

    /// <summary>Stride of each dimension in elements.</summary>
    public ReadOnlySpan<nint> Strides => view.Strides;

    /// <summary>Number of dimensions.</summary>
    public int Rank => view.Rank;

    /// <summary>Total number of elements.</summary>
    public long FlattenedLength => view.FlattenedLength;

    /// <summary>True when the elements are contiguous in row-major order.</summary>
    public bool IsDense => view.IsDense;

    /// <summary>True when the view was default-constructed (no device memory).</summary>
    public bool IsEmptyView => view.IsEmptyView;

    /// <summary>True when the tensor this view was taken from has been disposed: operations then throw <see cref="ObjectDisposedException"/>.</summary>
    public bool IsDisposed => view.IsDisposed;

    /// <summary>Slices with one range per leading dimension (missing trailing dimensions are kept whole).</summary>
    public DeviceTensorSpan<T> Slice(params ReadOnlySpan<Range> ranges) => new(view.Slice(ranges));

    /// <summary>Views the same memory with new lengths; the view must be dense and the element count equal.</summary>
    public DeviceTensorSpan<T> Reshape(params ReadOnlySpan<nint> newLengths) => new(view.Reshape(newLengths));

    /// <summary>This view as read-only.</summary>
    public ReadOnlyDeviceTensorSpan<T> AsReadOnly() => view;

    /// <summary>Converts to a read-only view.</summary>
    public static implicit operator ReadOnlyDeviceTensorSpan<T>(DeviceTensorSpan<T> span) => span.view;

    /// <summary>Copies host data (exactly <see cref="FlattenedLength"/> elements, row-major) into a dense view.</summary>
    public void CopyFrom(ReadOnlySpan<T> source)
    {
        TensorViewMath.RequireDense(view, "destination");
        if (source.Length != FlattenedLength)
            throw new ArgumentException(
                $"Source has {source.Length} elements but the tensor {TensorShape.Format(Lengths)} has {FlattenedLength}.", nameof(source));
        if (FlattenedLength == 0) return;
        View.SubView(0, FlattenedLength).CopyFromCPU(Device.Stream, source);
        Device.Stream.Synchronize();
    }

    /// <summary>Copies a host tensor with the same lengths into a dense view.</summary>
    public void CopyFrom(scoped in ReadOnlyTensorSpan<T> source)
    {
        if (!source.Lengths.SequenceEqual(Lengths))
            throw new ArgumentException(
                $"Source lengths {TensorShape.Format(source.Lengths)} differ from the tensor's {TensorShape.Format(Lengths)}.", nameof(source));
        var flat = new T[source.FlattenedLength];
        source.FlattenTo(flat);
        CopyFrom(flat);
    }

    /// <summary>Copies the view to host memory (row-major).</summary>
    public void CopyTo(Span<T> destination) => view.CopyTo(destination);

    /// <summary>Copies the view into a host tensor span with the same lengths (which may be strided); see
    /// <see cref="ReadOnlyDeviceTensorSpan{T}.CopyTo(in TensorSpan{T})"/>.</summary>
    public void CopyTo(scoped in TensorSpan<T> destination) => view.CopyTo(destination);

    /// <summary>Fills the view with zero bytes, asynchronously on the device's stream.</summary>
    public void Clear()
    {
        TensorViewMath.RequireDense(view, "span");
        if (FlattenedLength > 0) View.SubView(0, FlattenedLength).MemSetToZero(Device.Stream);
    }

    /// <inheritdoc />
    public override string ToString() => $"DeviceTensorSpan<{typeof(T).Name}>{TensorShape.Format(Lengths)}";
}

/// <summary>A read-only, non-owning view of device memory with lengths and strides. Operations read inputs through these.</summary>
public readonly struct ReadOnlyDeviceTensorSpan<T> where T : unmanaged
{
    private readonly nint[] lengths;
    private readonly nint[] strides;
    private readonly DeviceTensor<T> owner;

    internal ReadOnlyDeviceTensorSpan(ComputeDevice device, ArrayView1D<T, Stride1D.Dense> view, nint[] lengths, nint[] strides, DeviceTensor<T> owner)
    {
        this.owner = owner;
        Device = device;
        View = view;
        this.lengths = lengths;
        this.strides = strides;
        FlattenedLength = TensorShape.Product(lengths);
    }

    /// <summary>The device holding the memory.</summary>
    public ComputeDevice Device { get; }

    /// <summary>The underlying device memory (see <see cref="DeviceTensorSpan{T}.View"/>).</summary>
    public ArrayView1D<T, Stride1D.Dense> View { get; }

    /// <summary>Length of each dimension.</summary>
    public ReadOnlySpan<nint> Lengths => lengths;

    /// <summary>Stride of each dimension in elements.</summary>
    public ReadOnlySpan<nint> Strides => strides;

    /// <summary>Number of dimensions.</summary>
    public int Rank => lengths?.Length ?? 0;

    /// <summary>Total number of elements.</summary>
    public long FlattenedLength { get; }

    /// <summary>True when the elements are contiguous in row-major order.</summary>
    public bool IsDense => TensorShape.IsDense(lengths, strides);

    /// <summary>True when the view was default-constructed (no device memory).</summary>
    public bool IsEmptyView => Device is null;

    /// <summary>True when the tensor this view was taken from has been disposed: operations then throw <see cref="ObjectDisposedException"/>.</summary>
    public bool IsDisposed => owner is { IsDisposed: true };

    /// <summary>Slices with one range per leading dimension (missing trailing dimensions are kept whole).</summary>
    public ReadOnlyDeviceTensorSpan<T> Slice(params ReadOnlySpan<Range> ranges)
    {
        TensorViewMath.RequireLive(this, "this");
        var (view, l, s) = TensorViewMath.Slice(View, lengths, strides, ranges);
        return new ReadOnlyDeviceTensorSpan<T>(Device, view, l, s, owner);
    }

    /// <summary>Views the same memory with new lengths; the view must be dense and the element count equal.</summary>
    public ReadOnlyDeviceTensorSpan<T> Reshape(params ReadOnlySpan<nint> newLengths)
    {
        var l = TensorViewMath.Reshape(lengths, strides, newLengths);
        return new ReadOnlyDeviceTensorSpan<T>(Device, View, l, TensorShape.DenseStrides(l), owner);
    }

    /// <summary>Copies the view to host memory in row-major order (strided views are gathered). Waits for the stream.</summary>
    public void CopyTo(Span<T> destination)
    {
        TensorViewMath.RequireLive(this, "this");
        if (destination.Length < FlattenedLength)
            throw new ArgumentException(
                $"Destination has {destination.Length} elements but the tensor {TensorShape.Format(lengths)} has {FlattenedLength}.", nameof(destination));
        if (FlattenedLength == 0) return;
        if (IsDense)
        {
            View.SubView(0, FlattenedLength).CopyToCPU(Device.Stream, destination[..(int)FlattenedLength]);
            Device.Stream.Synchronize();
            return;
        }
        long extent = TensorShape.Extent(lengths, strides);
        var raw = new T[extent];
        View.SubView(0, extent).CopyToCPU(Device.Stream, raw);
        Device.Stream.Synchronize();
        TensorViewMath.Gather(raw, lengths, strides, destination);
    }

    /// <summary>
    /// Copies the view into a host tensor span with exactly the same lengths (the destination may be strided, as
    /// <see cref="ToTensor"/>'s counterpart for memory the caller owns). Waits for the stream. Nothing is written when
    /// the lengths differ.
    /// </summary>
    /// <exception cref="ArgumentException">The destination's lengths differ from the view's.</exception>
    public void CopyTo(scoped in TensorSpan<T> destination)
    {
        TensorViewMath.RequireLive(this, "this");
        if (!destination.Lengths.SequenceEqual(lengths ?? []))
            throw new ArgumentException(
                $"Destination lengths {TensorShape.Format(destination.Lengths)} differ from the tensor's {TensorShape.Format(lengths ?? [])}.", nameof(destination));
        if (FlattenedLength == 0) return;
        var flat = ToArray();
        new ReadOnlyTensorSpan<T>(flat, lengths).CopyTo(destination);
    }

    /// <summary>Copies the view to a new host array (row-major).</summary>
    public T[] ToArray()
    {
        var result = new T[FlattenedLength];
        CopyTo(result);
        return result;
    }

    /// <summary>Copies the view to a new host <see cref="Tensor{T}"/> with the same lengths.</summary>
    public Tensor<T> ToTensor() => Tensor.Create(ToArray(), lengths);

    /// <inheritdoc />
    public override string ToString() => $"ReadOnlyDeviceTensorSpan<{typeof(T).Name}>{TensorShape.Format(lengths)}";
}
