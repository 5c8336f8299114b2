using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;
using Kernels.Runtime;

namespace Kernels.Engine;

/// <summary>
/// The f32 scratch buffer split-K partials go to, one per device, grown on demand. Operations run on the device's
/// single stream, so one buffer serves every launch in order. Outgrown buffers are kept alive rather than freed,
/// because freeing device memory would wait for kernels still reading them (no host synchronization inside an op).
/// </summary>
public static class SplitKWorkspace
{
    private sealed class Slot
    {
        public MemoryBuffer1D<float, Stride1D.Dense>? Current;
        public readonly List<MemoryBuffer1D<float, Stride1D.Dense>> Retired = new();
    }

    private static readonly ConditionalWeakTable<ComputeDevice, Slot> Slots = new();

    /// <summary>A view of at least <paramref name="floats"/> floats on <paramref name="device"/>.</summary>
    public static ArrayView<float> Get(ComputeDevice device, long floats)
    {
        ArgumentNullException.ThrowIfNull(device);
        var slot = Slots.GetValue(device, _ => new Slot());
        lock (slot)
        {
            if (slot.Current is null || slot.Current.Length < floats)
            {
                if (slot.Current is not null) slot.Retired.Add(slot.Current);
                long size = Math.Max(floats, slot.Current is null ? 1L << 16 : slot.Current.Length * 2);
                slot.Current = device.Accelerator.Allocate1D<float>(size);
            }
            return slot.Current.View.SubView(0, floats);
        }
    }
}
