using ILGPU;
using ILGPU.Runtime;
using Kernels.Runtime;

namespace Kernels.LowRank;

/// <summary>
/// Scratch device memory of the family's operations: one growing f32 slab per device, leased for the whole enqueue
/// sequence of one call (a lock, so two host threads cannot interleave kernels that share the slab; work on one stream
/// runs in enqueue order, so the next lease may reuse the memory at once). Growing waits for the stream once before
/// the old slab is freed. Every request is reported to <see cref="Record"/>, which is how the tests prove that the
/// streaming paths never ask for an M×N or M×D buffer.
/// </summary>
internal static class LowRankWorkspace
{
    private sealed class Slab
    {
        public readonly object Gate = new();
        public MemoryBuffer1D<float, Stride1D.Dense>? Buffer;
    }

    private static readonly Dictionary<ComputeDevice, Slab> Slabs = new();

    [ThreadStatic] private static List<(string Purpose, long Floats)>? recorder;

    /// <summary>Starts recording the requests made on this thread; dispose to stop. Read the list it returns.</summary>
    public static Recording Record() => new();

    /// <summary>Leases at least <paramref name="floats"/> floats; dispose the lease once the call has enqueued its work.</summary>
    public static ScratchLease<float> Rent(ComputeDevice device, long floats, string purpose)
    {
        recorder?.Add((purpose, floats));
        Slab slab;
        lock (Slabs)
        {
            if (!Slabs.TryGetValue(device, out slab!)) Slabs[device] = slab = new Slab();
        }
        ScratchLease<float>.Enter(slab.Gate, "The low-rank workspace");
        try
        {
            if (floats > 0 && (slab.Buffer is null || slab.Buffer.Length < floats))
            {
                if (slab.Buffer is not null)
                {
                    device.SynchronizeAllStreams(); // earlier calls, on any stream, may still read the old slab
                    slab.Buffer.Dispose();
                }
                long size = Math.Max(floats, (slab.Buffer?.Length ?? 0) * 3 / 2);
                slab.Buffer = null;
                slab.Buffer = device.Accelerator.Allocate1D<float>(size);
            }
            var view = floats > 0 ? slab.Buffer!.View.AsContiguous().SubView(0, floats) : default;
            return new ScratchLease<float>(slab.Gate, view, device);
        }
        catch
        {
            Monitor.Exit(slab.Gate);
            throw;
        }
    }

    /// <summary>The requests made on this thread while it is alive.</summary>
    public sealed class Recording : IDisposable
    {
        private readonly List<(string Purpose, long Floats)>? outer = recorder;

        internal Recording() => recorder = Requests;

        /// <summary>(purpose, floats) in request order.</summary>
        public List<(string Purpose, long Floats)> Requests { get; } = new();

        /// <inheritdoc />
        public void Dispose() => recorder = outer;
    }
}
