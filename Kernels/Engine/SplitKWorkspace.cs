using Kernels.Runtime;

namespace Kernels.Engine;

/// <summary>
/// The f32 scratch buffer split-K partials go to, one per device, grown on demand (a <see cref="ScratchPool{T}"/>). A
/// caller leases it with <see cref="Rent"/> for the whole sequence "write partials, reduce them": the lease is a lock,
/// so two host threads cannot interleave their kernels in the one buffer, and a holder on another stream waits on the
/// device for the previous one.
/// </summary>
internal static class SplitKWorkspace
{
    private static readonly ScratchPool<float> Pool = new("The split-K workspace");

    /// <summary>Leases at least <paramref name="floats"/> floats on <paramref name="device"/>; dispose once the reduction is enqueued.</summary>
    public static ScratchLease<float> Rent(ComputeDevice device, long floats) => Pool.Rent(device, floats);
}
