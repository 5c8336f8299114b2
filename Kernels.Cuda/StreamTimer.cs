using ILGPU.Runtime;

namespace Kernels.Cuda;

/// <summary>
/// Times work enqueued on a stream with device-side markers (CUDA events on a GPU), so that host overhead between
/// launches is not counted. The context must be created with profiling enabled.
/// </summary>
public static class StreamTimer
{
    /// <summary>
    /// Runs <paramref name="enqueue"/> <paramref name="repetitions"/> times between two markers and returns the
    /// mean milliseconds per repetition. Synchronizes the stream at the end (timing is a host-visible result).
    /// </summary>
    public static double MeasureMilliseconds(AcceleratorStream stream, Action enqueue, int repetitions = 1)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(enqueue);
        ArgumentOutOfRangeException.ThrowIfLessThan(repetitions, 1);
        using var start = stream.AddProfilingMarker();
        for (int i = 0; i < repetitions; i++) enqueue();
        using var end = stream.AddProfilingMarker();
        end.Synchronize();
        return (end - start).TotalMilliseconds / repetitions;
    }
}
