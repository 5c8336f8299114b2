using ILGPU;

namespace Kernels.Runtime;

/// <summary>
/// Scratch device memory held by one call for its whole enqueue sequence: the lease holds a lock on the scratch
/// owner, so a second host thread cannot enqueue kernels into the same memory between this call's kernels. Work on
/// one stream runs in enqueue order, so the next holder may reuse the memory as soon as the lease is released.
/// Dispose it (a <c>using</c>) once the call has enqueued its last kernel that touches <see cref="View"/>.
/// </summary>
internal readonly struct ScratchLease<T> : IDisposable where T : unmanaged
{
    private readonly object? gate;

    /// <summary>Takes <paramref name="gate"/> (already entered by the caller) together with the view it guards.</summary>
    internal ScratchLease(object? gate, ArrayView<T> view)
    {
        this.gate = gate;
        View = view;
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
