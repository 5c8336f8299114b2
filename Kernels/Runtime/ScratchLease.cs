using ILGPU;

namespace Kernels.Runtime;

/// <summary>
/// Scratch device memory held by one call for its whole enqueue sequence: the lease holds a lock on the scratch
/// owner, so a second host thread cannot enqueue kernels into the same memory between this call's kernels. Work on
/// one stream runs in enqueue order, so the next holder on the same stream may reuse the memory as soon as the lease
/// is released; a holder on another stream first makes its stream wait, on the device, for an event recorded on the
/// previous holder's stream (no host wait). Dispose it (a <c>using</c>) once the call has enqueued its last kernel
/// that touches <see cref="View"/>.
/// </summary>
internal readonly struct ScratchLease<T> : IDisposable where T : unmanaged
{
    private readonly object? gate;

    /// <summary>
    /// Takes <paramref name="gate"/> (already entered by the caller) together with the view it guards, and orders this
    /// call's stream on <paramref name="device"/> after the previous holder's.
    /// </summary>
    internal ScratchLease(object? gate, ArrayView<T> view, ComputeDevice device)
    {
        this.gate = gate;
        View = view;
        if (gate is not null) ScratchOrder.After(gate, device.CurrentStream);
    }

    /// <summary>The leased elements.</summary>
    public ArrayView<T> View { get; }

    /// <summary>Elements [offset, offset + count) of the lease.</summary>
    public ArrayView<T> Slice(long offset, long count) => count == 0 ? default : View.SubView(offset, count);

    /// <summary>Enters <paramref name="gate"/>; refuses a second lease of the same scratch on the same thread, which would alias the first.</summary>
    internal static void Enter(object gate, string owner)
    {
        if (Monitor.IsEntered(gate))
            throw new InvalidOperationException($"{owner} is already leased by this thread; a nested lease would share its memory.");
        Monitor.Enter(gate);
    }

    /// <summary>Releases the lock.</summary>
    public void Dispose()
    {
        if (gate is not null) Monitor.Exit(gate);
    }
}

/// <summary>The stream that last used each scratch owner (keyed by its gate), for ordering the next holder after it.</summary>
internal static class ScratchOrder
{
    private sealed class Last
    {
        public DeviceStream? Stream;
    }

    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<object, Last> Users = new();

    /// <summary>Called with the gate held: makes <paramref name="stream"/> wait for the previous user's stream's work.</summary>
    public static void After(object gate, DeviceStream stream)
    {
        var last = Users.GetValue(gate, _ => new Last());
        var previous = last.Stream;
        last.Stream = stream;
        if (previous is null || previous == stream || !stream.Device.IsCuda) return;
        // An event recorded now on the previous stream covers the previous holder's kernels (and possibly later work
        // on that stream: a conservative wait). A disposed stream's work has finished (Dispose synchronizes).
        DeviceEvent done;
        try { done = previous.Record(); }
        catch (ObjectDisposedException) { return; }
        using (done) stream.Wait(done);
    }
}
