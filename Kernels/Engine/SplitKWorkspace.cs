using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;
using Kernels.Runtime;

namespace Kernels.Engine;

/// <summary>
/// The f32 scratch buffer split-K partials go to, one per device, grown on demand. A caller leases it with
/// <see cref="Rent"/> for the whole sequence "write partials, reduce them": the lease is a lock, so two host threads
/// cannot interleave their kernels in the one buffer (the device's single stream runs the holder's kernels in order,
/// so the next holder may reuse the memory at once). Outgrown buffers are kept alive rather than freed, because
/// freeing device memory would wait for kernels still reading them (no host synchronization inside an op).
/// </summary>
internal static class SplitKWorkspace
{
    private sealed class Slot
    {
        public MemoryBuffer1D<float, Stride1D.Dense>? Current;
        public readonly List<MemoryBuffer1D<float, Stride1D.Dense>> Retired = new();
    }

    private static readonly ConditionalWeakTable<ComputeDevice, Slot> Slots = new();

    /// <summary>Leases at least <paramref name="floats"/> floats on <paramref name="device"/>; dispose once the reduction is enqueued.</summary>
    public static ScratchLease<float> Rent(ComputeDevice device, long floats)
    {
        ArgumentNullException.ThrowIfNull(device);
        var slot = Slots.GetValue(device, _ => new Slot());
        ScratchLease<float>.Enter(slot, "The split-K workspace");
        try
        {
            if (slot.Current is null || slot.Current.Length < floats)
            {
                if (slot.Current is not null) slot.Retired.Add(slot.Current);
                long size = Math.Max(floats, slot.Current is null ? 1L << 16 : slot.Current.Length * 2);
                slot.Current = null;
                slot.Current = device.Accelerator.Allocate1D<float>(size);
            }
            return new ScratchLease<float>(slot, slot.Current.View.SubView(0, floats), device);
        }
        catch
        {
            Monitor.Exit(slot);
            throw;
        }
    }
}
