using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using ILGPU;
using ILGPU.Runtime;
using Kernels.Runtime;

namespace Kernels.Tensors;

/// <summary>
/// Owns a dense, row-major block of device memory with tensor lengths. Operations take its views
/// (<see cref="Span"/>, <see cref="ReadOnlySpan"/>), never the owner. Host copies are synchronous with respect to the
/// device's stream (they wait for work already enqueued there).
/// </summary>
public sealed class DeviceTensor<T> : IDisposable where T : unmanaged
{
    private readonly nint[] lengths;
    private readonly nint[] strides;
    private MemoryBuffer1D<T, Stride1D.Dense>? buffer;
    private Action? release;

    // Wraps memory the caller owns (DeviceTensor.WrapExternal): lengths already validated, release runs once on Dispose.
    internal DeviceTensor(ComputeDevice device, ReadOnlySpan<nint> lengths, MemoryBuffer1D<T, Stride1D.Dense> external, Action? release)
    {
        Device = device;
        this.lengths = lengths.ToArray();
        strides = TensorShape.DenseStrides(lengths);
        FlattenedLength = TensorShape.Product(lengths);
        buffer = external;
        this.release = release;
        IsExternal = true;
    }

    internal DeviceTensor(ComputeDevice device, ReadOnlySpan<nint> lengths)
    {
        Device = device ?? throw new ArgumentNullException(nameof(device));
        if (lengths.IsEmpty) throw new ArgumentException("A tensor needs at least one dimension.", nameof(lengths));
        this.lengths = lengths.ToArray();
        strides = TensorShape.DenseStrides(lengths);
        FlattenedLength = TensorShape.Product(lengths);
        long bytes = FlattenedLength > long.MaxValue / Marshal.SizeOf<T>() ? long.MaxValue : FlattenedLength * Marshal.SizeOf<T>();
        if (bytes > device.Accelerator.MemorySize)
            throw new ArgumentOutOfRangeException(nameof(lengths),
                $"A {typeof(T).Name} tensor {TensorShape.Format(lengths)} needs {bytes} bytes but {device.Name} has {device.Accelerator.MemorySize}.");
        // ILGPU cannot allocate zero elements; keep a one-element buffer behind empty tensors.
        buffer = device.Accelerator.Allocate1D<T>(Math.Max(1, FlattenedLength));
    }

    /// <summary>The device that holds the memory.</summary>
    public ComputeDevice Device { get; }

    /// <summary>Length of each dimension.</summary>
    public ReadOnlySpan<nint> Lengths => lengths;

    /// <summary>Stride of each dimension in elements (row-major).</summary>
    public ReadOnlySpan<nint> Strides => strides;

    /// <summary>Number of dimensions.</summary>
    public int Rank => lengths.Length;

    /// <summary>Total number of elements.</summary>
    public long FlattenedLength { get; }

    /// <summary>Size in bytes of the elements.</summary>
    public long ByteLength => FlattenedLength * Marshal.SizeOf<T>();

    internal ArrayView1D<T, Stride1D.Dense> View
    {
        get
        {
            ObjectDisposedException.ThrowIf(buffer is null, this);
            return buffer.View.SubView(0, FlattenedLength);
        }
    }

    /// <summary>A writable view of the whole tensor.</summary>
    public DeviceTensorSpan<T> Span => new(Device, View, lengths, strides, this);

    /// <summary>A read-only view of the whole tensor.</summary>
    public ReadOnlyDeviceTensorSpan<T> ReadOnlySpan => new(Device, View, lengths, strides, this);

    /// <summary>True once <see cref="Dispose"/> has run; views taken earlier are then refused by every operation.</summary>
    public bool IsDisposed => buffer is null;

    /// <summary>Views the tensor as writable.</summary>
    public static implicit operator DeviceTensorSpan<T>(DeviceTensor<T> tensor) => tensor.Span;

    /// <summary>Views the tensor as read-only.</summary>
    public static implicit operator ReadOnlyDeviceTensorSpan<T>(DeviceTensor<T> tensor) => tensor.ReadOnlySpan;

    /// <summary>Copies <paramref name="source"/> (exactly <see cref="FlattenedLength"/> elements) to the device.</summary>
    public void CopyFrom(ReadOnlySpan<T> source) => Span.CopyFrom(source);

    /// <summary>Copies a host tensor of the same lengths to the device.</summary>
    public void CopyFrom(scoped in ReadOnlyTensorSpan<T> source) => Span.CopyFrom(source);

    /// <summary>Copies the tensor to <paramref name="destination"/> (at least <see cref="FlattenedLength"/> elements).</summary>
    public void CopyTo(Span<T> destination) => ReadOnlySpan.CopyTo(destination);

    /// <summary>Copies the tensor into a host tensor span with the same lengths (which may be strided); see
    /// <see cref="ReadOnlyDeviceTensorSpan{T}.CopyTo(in TensorSpan{T})"/>.</summary>
    public void CopyTo(scoped in TensorSpan<T> destination) => ReadOnlySpan.CopyTo(destination);

    /// <summary>Copies the tensor to a new host array.</summary>
    public T[] ToArray() => ReadOnlySpan.ToArray();

    /// <summary>Copies the tensor to a new host <see cref="Tensor{T}"/> with the same lengths.</summary>
    public Tensor<T> ToTensor() => ReadOnlySpan.ToTensor();

    /// <summary>True when the memory belongs to someone else (<see cref="DeviceTensor.WrapExternal{T}"/>): Dispose then frees nothing.</summary>
    public bool IsExternal { get; }

    /// <summary>
    /// Releases the device memory; for an external tensor, drops the view and calls its release callback once (without
    /// waiting for the stream: synchronize first if queued work still reads the memory).
    /// </summary>
    public void Dispose()
    {
        buffer?.Dispose();
        buffer = null;
        Interlocked.Exchange(ref release, null)?.Invoke();
    }

    /// <inheritdoc />
    public override string ToString() => $"DeviceTensor<{typeof(T).Name}>{TensorShape.Format(lengths)} on {Device.Name}";
}

/// <summary>Factory helpers for <see cref="DeviceTensor{T}"/>.</summary>
public static class DeviceTensor
{
    /// <summary>Allocates an uninitialized tensor on <paramref name="device"/>.</summary>
    public static DeviceTensor<T> Create<T>(ComputeDevice device, params ReadOnlySpan<nint> lengths) where T : unmanaged =>
        device.Allocate<T>(lengths);

    /// <summary>Allocates a tensor shaped like <paramref name="source"/> and copies it to the device.</summary>
    public static DeviceTensor<T> FromTensor<T>(ComputeDevice device, scoped in ReadOnlyTensorSpan<T> source) where T : unmanaged
    {
        var t = device.Allocate<T>(source.Lengths);
        try { t.CopyFrom(source); }
        catch { t.Dispose(); throw; }
        return t;
    }

    /// <summary>
    /// Wraps memory the caller owns as a dense row-major tensor, without copying (docs/interop.md). Supported on the
    /// CPU accelerator, where <paramref name="pointer"/> is host memory (pinned or native) that kernels then read and
    /// write in place. On CUDA it throws <see cref="NotSupportedException"/>: ILGPU 1.5.3 runs kernels in a context of
    /// its own, not the primary context where the CUDA runtime, libtorch and ONNX Runtime allocate (docs/interop.md §2).
    /// <para>Lifetime contract: the memory must stay valid, unmoved and unfreed until the tensor is disposed and every
    /// operation enqueued on it has finished (<see cref="ComputeDevice.Synchronize"/>). Dispose frees nothing; it
    /// invalidates the tensor's views and calls <paramref name="release"/> once (e.g. to unpin a GCHandle).</para>
    /// </summary>
    /// <param name="device">The device whose kernels will use the memory.</param>
    /// <param name="pointer">Address of the first element, aligned to the element size.</param>
    /// <param name="lengths">Tensor lengths (at least one element).</param>
    /// <param name="release">Called once by Dispose; null for none.</param>
    public static DeviceTensor<T> WrapExternal<T>(ComputeDevice device, IntPtr pointer, ReadOnlySpan<nint> lengths, Action? release = null)
        where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(device);
        if (lengths.IsEmpty) throw new ArgumentException("A tensor needs at least one dimension.", nameof(lengths));
        foreach (var l in lengths)
            if (l < 1) throw new ArgumentException($"Lengths {TensorShape.Format(lengths)}: an external tensor needs every length ≥ 1.", nameof(lengths));
        long n = TensorShape.Product(lengths);
        int size = Marshal.SizeOf<T>();
        if (pointer == IntPtr.Zero) throw new ArgumentException("The pointer is null.", nameof(pointer));
        if (pointer % size != 0)
            throw new ArgumentException($"Pointer 0x{pointer:x} is not aligned to the {size}-byte {typeof(T).Name}.", nameof(pointer));
        if (n > long.MaxValue / size) throw new ArgumentException($"Lengths {TensorShape.Format(lengths)} overflow a byte count.", nameof(lengths));
        if (device.Accelerator is not ILGPU.Runtime.CPU.CPUAccelerator)
            throw new NotSupportedException($"{device.Name}: wrapping external device memory needs ILGPU to run on the CUDA primary context, " +
                "which ILGPU 1.5.3 cannot (CudaAccelerator always creates its own context); see docs/interop.md.");
        var raw = ILGPU.Runtime.CPU.CPUMemoryBuffer.Create(device.Accelerator, pointer, n, size);
        return new DeviceTensor<T>(device, lengths, new ExternalBuffer<T>(device.Accelerator, new ArrayView<T>(raw, 0, n)), release);
    }

    // A dense 1-D buffer over memory ILGPU did not allocate; disposing it disposes the pointer wrapper, which frees nothing.
    private sealed class ExternalBuffer<T>(Accelerator accelerator, ArrayView1D<T, Stride1D.Dense> view)
        : MemoryBuffer1D<T, Stride1D.Dense>(accelerator, view) where T : unmanaged;

    /// <summary>Uploads host fp16 values (<see cref="System.Half"/>) into a device fp16 tensor.</summary>
    public static DeviceTensor<ILGPU.Half> FromHalf(ComputeDevice device, ReadOnlySpan<System.Half> source, params ReadOnlySpan<nint> lengths) =>
        device.Upload(MemoryMarshal.Cast<System.Half, ILGPU.Half>(source), lengths);

    /// <summary>Copies host <see cref="System.Half"/> values into a device fp16 tensor (bit-cast, no rounding).</summary>
    public static void CopyFrom(this DeviceTensor<ILGPU.Half> tensor, ReadOnlySpan<System.Half> source) =>
        tensor.CopyFrom(MemoryMarshal.Cast<System.Half, ILGPU.Half>(source));

    /// <summary>Copies a device fp16 tensor into host <see cref="System.Half"/> values (bit-cast, no rounding).</summary>
    public static void CopyTo(this DeviceTensor<ILGPU.Half> tensor, Span<System.Half> destination) =>
        tensor.CopyTo(MemoryMarshal.Cast<System.Half, ILGPU.Half>(destination));
}
