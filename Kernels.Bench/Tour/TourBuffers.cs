using Kernels.Runtime;
using Kernels.Tensors;

namespace Kernels.Bench.Tour;

/// <summary>
/// The device side of one tour row: what it uploads, allocates or hands over is released with its run, or at once when
/// setting the row up throws. A row is then data: <see cref="TourCase.Of"/> with the shape, type, FLOPs and bytes,
/// and a setup that uploads its inputs here and returns <see cref="Run"/> with the launch, the reference check and its
/// bound.
/// </summary>
public sealed class TourBuffers
{
    private readonly List<IDisposable> owned = [];

    /// <summary>Creates the buffers of one row on <paramref name="context"/>'s device.</summary>
    public TourBuffers(TourContext context) => Context = context;

    /// <summary>The device and size class of the run.</summary>
    public TourContext Context { get; }

    /// <summary>Where the row runs.</summary>
    public ComputeDevice Device => Context.Device;

    /// <summary>Uploads <paramref name="data"/> as a tensor of <paramref name="lengths"/>, released with the run.</summary>
    public DeviceTensor<T> Upload<T>(ReadOnlySpan<T> data, params ReadOnlySpan<nint> lengths) where T : unmanaged =>
        Own(Device.Upload(data, lengths));

    /// <summary>Allocates a tensor of <paramref name="lengths"/>, released with the run.</summary>
    public DeviceTensor<T> Allocate<T>(params ReadOnlySpan<nint> lengths) where T : unmanaged => Own(Device.Allocate<T>(lengths));

    /// <summary>Takes <paramref name="resource"/> (a matrix, an adapter set...) to release with the run.</summary>
    public T Own<T>(T resource) where T : IDisposable
    {
        owned.Add(resource);
        return resource;
    }

    /// <summary>
    /// The prepared row: <paramref name="launch"/> enqueues one call, <paramref name="verify"/> compares the result of
    /// one call with the reference (relative error), at most <paramref name="bound"/> counts as verified.
    /// </summary>
    public TourRun Run(Action launch, Func<double> verify, double bound, params (string Key, string Value)[] notes)
    {
        var run = new TourRun { Launch = launch, Verify = verify, Bound = bound, Release = Release };
        foreach (var (key, value) in notes) run.Notes[key] = value;
        return run;
    }

    /// <summary>Releases everything the row owns, the newest first.</summary>
    public void Release()
    {
        for (int i = owned.Count - 1; i >= 0; i--) owned[i].Dispose();
        owned.Clear();
    }
}
