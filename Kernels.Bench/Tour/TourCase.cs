using Kernels.Runtime;

namespace Kernels.Bench.Tour;

/// <summary>What a family contributes to the tour: its cases for a device. Discovered by reflection.</summary>
public interface ITourSuite
{
    /// <summary>The family name (Quantization, Dense, Sparse, SpQR, LowRank...).</summary>
    string Family { get; }

    /// <summary>The cases for this run. <paramref name="context"/> says whether to use full (GPU) or small shapes.</summary>
    IEnumerable<TourCase> Cases(TourContext context);
}

/// <summary>The device and size class of a tour run.</summary>
/// <param name="Device">Where kernels run.</param>
/// <param name="Full">True on a GPU: real LLM shapes. False on the CPU accelerator: small shapes that only prove the kernels work.</param>
public sealed record TourContext(ComputeDevice Device, bool Full);

/// <summary>One row of the tour: an operation at one shape and element type.</summary>
public sealed class TourCase
{
    /// <summary>Operation name, e.g. "quantize8 dynamic B=256".</summary>
    public required string Op { get; init; }

    /// <summary>Shape, e.g. "67108864" or "M=4096 K=4096 N=16".</summary>
    public required string Shape { get; init; }

    /// <summary>Element type name: f32, f16, bf16.</summary>
    public required string DType { get; init; }

    /// <summary>Floating-point operations per call (0 for pure data movement).</summary>
    public required double Flops { get; init; }

    /// <summary>Compulsory device-memory bytes per call: every input read once, every output written once.</summary>
    public required double Bytes { get; init; }

    /// <summary>Allocates inputs on the device and returns the run; the tour disposes it.</summary>
    public required Func<TourContext, TourRun> Setup { get; init; }

    /// <summary>
    /// A row as data: its names, FLOPs and compulsory bytes, and a setup that puts its buffers in a
    /// <see cref="TourBuffers"/> and returns <see cref="TourBuffers.Run"/>. The buffers are released with the run, or
    /// at once when the setup throws.
    /// </summary>
    public static TourCase Of(string op, string shape, string dtype, double flops, double bytes, Func<TourBuffers, TourRun> setup) => new()
    {
        Op = op, Shape = shape, DType = dtype, Flops = flops, Bytes = bytes,
        Setup = context =>
        {
            var buffers = new TourBuffers(context);
            try { return setup(buffers); }
            catch
            {
                buffers.Release();
                throw;
            }
        },
    };
}

/// <summary>A prepared case: launch it, verify its last result, dispose its buffers.</summary>
public sealed class TourRun : IDisposable
{
    /// <summary>Enqueues one call on the device's stream (asynchronous; no host synchronization).</summary>
    public required Action Launch { get; init; }

    /// <summary>
    /// After one <see cref="Launch"/> and a synchronize, compares the device result with the CPU reference and returns
    /// the relative error (0 for exact matches, +∞ for a mismatch of exact data).
    /// </summary>
    public required Func<double> Verify { get; init; }

    /// <summary>Largest relative error that counts as verified.</summary>
    public double Bound { get; init; }

    /// <summary>Extra facts for the row (bits per weight, chosen path, registers...).</summary>
    public Dictionary<string, string> Notes { get; } = new();

    /// <summary>Releases the run's buffers.</summary>
    public Action? Release { get; init; }

    /// <inheritdoc />
    public void Dispose() => Release?.Invoke();
}

/// <summary>A measured row, as printed and as written to JSON.</summary>
/// <remarks>
/// <see cref="MedianMs"/> is per launch: the median over repetitions of a span of <see cref="Launches"/> back-to-back
/// launches between two stream markers, divided by <see cref="Launches"/> (<see cref="LaunchTiming"/>).
/// </remarks>
public sealed record TourRow(
    string Op, string Shape, string DType, string Device, bool Verified, double RelError,
    double MedianMs, double GbPerS, double TflopPerS, double PctOfCopy, IReadOnlyDictionary<string, string> Notes,
    int Launches = 0);
