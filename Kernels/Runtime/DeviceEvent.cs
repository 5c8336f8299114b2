using Kernels.Cuda;

namespace Kernels.Runtime;

/// <summary>
/// A point in a <see cref="DeviceStream"/> (<see cref="DeviceStream.Record"/>): it completes when the work enqueued
/// before it has finished. Another stream can <see cref="DeviceStream.Wait"/> for it on the device; the host can poll
/// <see cref="IsCompleted"/> or block in <see cref="Synchronize"/>. On the CPU accelerator an event is complete when
/// recorded.
/// </summary>
public sealed class DeviceEvent : IDisposable
{
    private readonly object gate = new();
    private IntPtr handle;
    private bool disposed;

    internal DeviceEvent(ComputeDevice device, IntPtr handle)
    {
        Device = device;
        this.handle = handle;
    }

    /// <summary>The device whose stream recorded the event.</summary>
    public ComputeDevice Device { get; }

    internal IntPtr Handle
    {
        get { lock (gate) { ObjectDisposedException.ThrowIf(disposed, this); return handle; } }
    }

    /// <summary>True when the work before the event has finished. Does not block.</summary>
    public bool IsCompleted
    {
        get
        {
            lock (gate)
            {
                ObjectDisposedException.ThrowIf(disposed, this);
                if (handle == IntPtr.Zero) return true;
                using var binding = Device.Accelerator.BindScoped();
                return CudaDriver.QueryEvent(handle);
            }
        }
    }

    /// <summary>Blocks the host until the event completes.</summary>
    public void Synchronize()
    {
        lock (gate)
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            if (handle == IntPtr.Zero) return;
            using var binding = Device.Accelerator.BindScoped();
            CudaDriver.SynchronizeEvent(handle);
        }
    }

    /// <summary>Releases the event (work that waits for it still does: the driver keeps it until then).</summary>
    public void Dispose()
    {
        lock (gate)
        {
            if (disposed) return;
            disposed = true;
            if (handle == IntPtr.Zero) return;
            using var binding = Device.Accelerator.BindScoped();
            CudaDriver.DestroyEvent(handle);
            handle = IntPtr.Zero;
        }
    }
}
