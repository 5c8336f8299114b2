using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using Kernels.Cuda;

namespace Kernels.Runtime;

/// <summary>
/// A queue of device work. Every operation enqueues on its device's <see cref="ComputeDevice.CurrentStream"/>: the
/// device's default stream, or the stream a <see cref="Use"/> scope made current (PyTorch's
/// <c>torch.cuda.stream(s)</c>). Work on one stream runs in enqueue order; work on two streams may overlap, and
/// <see cref="Record"/> / <see cref="Wait"/> order it without the host waiting. The library's own scratch memory is
/// safe across streams (a call on another stream waits, on the device, for the previous user of the scratch).
/// On the CPU accelerator every launch completes before it returns, so streams there only carry the API.
/// </summary>
public sealed class DeviceStream : IDisposable
{
    private readonly bool owned;
    private readonly object gate = new();
    private bool disposed;

    internal DeviceStream(ComputeDevice device, AcceleratorStream native, bool isDefault, bool owned)
    {
        Device = device;
        Native = native;
        IsDefault = isDefault;
        this.owned = owned;
    }

    /// <summary>The device the stream belongs to.</summary>
    public ComputeDevice Device { get; }

    /// <summary>True for the device's default stream (which is never disposed).</summary>
    public bool IsDefault { get; }

    /// <summary>True once <see cref="Dispose"/> has run.</summary>
    public bool IsDisposed { get { lock (gate) return disposed; } }

    internal AcceleratorStream Native { get; }

    /// <summary>
    /// Makes this stream the device's current stream for the calling thread and the asynchronous flow it starts (an
    /// <see cref="AsyncLocal{T}"/>), until the returned scope is disposed; scopes nest and restore the previous stream.
    /// </summary>
    public StreamScope Use() => Device.Use(this);

    /// <summary>
    /// Enqueues an event: it completes when all work enqueued on this stream before it has finished. Returns at once.
    /// </summary>
    public DeviceEvent Record()
    {
        lock (gate)
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            if (Native is not CudaStream cuda) return new DeviceEvent(Device, IntPtr.Zero);
            using var binding = Device.Accelerator.BindScoped();
            var handle = CudaDriver.CreateEvent();
            try { CudaDriver.RecordEvent(handle, cuda.StreamPtr); }
            catch { CudaDriver.DestroyEvent(handle); throw; }
            return new DeviceEvent(Device, handle);
        }
    }

    /// <summary>
    /// Work enqueued on this stream after this call waits, on the device, until <paramref name="event"/> completes.
    /// The host does not wait.
    /// </summary>
    /// <exception cref="ArgumentException">The event belongs to another device.</exception>
    public void Wait(DeviceEvent @event)
    {
        ArgumentNullException.ThrowIfNull(@event);
        if (@event.Device != Device)
            throw new ArgumentException($"event belongs to {@event.Device}, this stream to {Device}.", nameof(@event));
        lock (gate)
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            IntPtr handle = @event.Handle;
            if (Native is not CudaStream cuda || handle == IntPtr.Zero) return;
            using var binding = Device.Accelerator.BindScoped();
            CudaDriver.StreamWaitEvent(cuda.StreamPtr, handle);
        }
    }

    /// <summary>Blocks the host until all work enqueued on this stream has finished.</summary>
    public void Synchronize()
    {
        lock (gate)
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            Native.Synchronize();
        }
    }

    /// <summary>
    /// Waits for the stream's work, then releases it (a wrapped external stream is not destroyed: its owner does
    /// that). The default stream ignores Dispose.
    /// </summary>
    public void Dispose()
    {
        if (IsDefault) return;
        lock (gate)
        {
            if (disposed) return;
            Native.Synchronize();
            if (owned) Native.Dispose();
            disposed = true;
        }
    }

    /// <inheritdoc />
    public override string ToString() => IsDefault ? $"default stream of {Device}" : $"stream on {Device}";
}

/// <summary>The scope of a current stream (<see cref="DeviceStream.Use"/>); dispose to restore the previous one.</summary>
public readonly struct StreamScope : IDisposable
{
    private readonly ComputeDevice? device;
    private readonly DeviceStream? previous;
    private readonly DeviceStream? current;

    internal StreamScope(ComputeDevice device, DeviceStream? previous, DeviceStream current)
    {
        this.device = device;
        this.previous = previous;
        this.current = current;
    }

    /// <summary>Restores the stream that was current before the scope.</summary>
    /// <exception cref="InvalidOperationException">Scopes were disposed out of order.</exception>
    public void Dispose() => device?.EndUse(previous, current!);
}
