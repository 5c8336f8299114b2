using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;

namespace Kernels.Runtime;

/// <summary>
/// One scratch buffer per device for one purpose, grown on demand and leased for a call's whole enqueue sequence
/// (<see cref="ScratchLease{T}"/>: a lock, ordered across streams). Outgrown buffers are kept alive rather than freed,
/// because freeing device memory would wait for kernels still reading them (no host synchronization inside an op).
/// </summary>
internal sealed class ScratchPool<T> where T : unmanaged
{
    private sealed class Slot
    {
        public MemoryBuffer1D<T, Stride1D.Dense>? Current;
        public readonly List<MemoryBuffer1D<T, Stride1D.Dense>> Retired = new();
    }

    private readonly ConditionalWeakTable<ComputeDevice, Slot> slots = new();
    private readonly string owner;
    private readonly long initial;

    /// <summary>A pool named <paramref name="owner"/> in errors, whose first buffer holds at least <paramref name="initial"/> elements.</summary>
    public ScratchPool(string owner, long initial = 1L << 16)
    {
        this.owner = owner;
        this.initial = initial;
    }

    /// <summary>Leases at least <paramref name="count"/> elements on <paramref name="device"/>; dispose once the call's last kernel that uses them is enqueued.</summary>
    public ScratchLease<T> Rent(ComputeDevice device, long count)
    {
        ArgumentNullException.ThrowIfNull(device);
        var slot = slots.GetValue(device, _ => new Slot());
        ScratchLease<T>.Enter(slot, owner);
        try
        {
            if (slot.Current is null || slot.Current.Length < count)
            {
                if (slot.Current is not null) slot.Retired.Add(slot.Current);
                long size = Math.Max(count, slot.Current is null ? initial : slot.Current.Length * 2);
                slot.Current = null;
                slot.Current = device.Accelerator.Allocate1D<T>(size);
            }
            return new ScratchLease<T>(slot, slot.Current.View.SubView(0, Math.Max(count, 0)), device);
        }
        catch
        {
            Monitor.Exit(slot);
            throw;
        }
    }
}
