using ILGPU.Runtime;
using Kernels.Cuda;

namespace Kernels.Bench.Tour;

/// <summary>A measured time: the median milliseconds per launch and the launches each timed span held.</summary>
/// <param name="MedianMs">Median over the repetitions of (span between the two markers) / <paramref name="Launches"/>.</param>
/// <param name="Launches">R, the back-to-back launches between the two markers of one span.</param>
public readonly record struct LaunchTime(double MedianMs, int Launches);

/// <summary>
/// Times R back-to-back launches between two stream markers (CUDA events on a GPU) and reports the time per launch
/// (docs/design.md §6): one launch between two events counts the launch latency, which dominates µs-scale rows. R is
/// calibrated so that one span lasts at least <see cref="SpanMs"/>: from one timed launch first, then from timed spans
/// of R launches until one is long enough (one launch alone overstates the time per launch by the latency, so R from
/// it alone can fall short). A launch that takes <see cref="SpanMs"/> or more (every CPU-accelerator row) gets R = 1
/// and costs no extra launch.
/// </summary>
public static class LaunchTiming
{
    /// <summary>The shortest span timed, in milliseconds.</summary>
    public const double SpanMs = 1.0;

    /// <summary>The most launches in one span (a ~0.1 µs launch would otherwise ask for 10^4 and more).</summary>
    public const int MaxLaunches = 4096;

    /// <summary>Recalibrations after the first timed launch before R is kept as it is.</summary>
    private const int Refinements = 3;

    /// <summary>
    /// Calibrates R, then returns the median over <paramref name="repetitions"/> spans of R launches of
    /// <paramref name="launch"/>, per launch. Synchronizes the stream after every span.
    /// </summary>
    public static LaunchTime Measure(AcceleratorStream stream, Action launch, int repetitions)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(repetitions, 1);
        int launches = Calibrate(stream, launch);
        var times = new double[repetitions];
        for (int i = 0; i < repetitions; i++) times[i] = StreamTimer.MeasureMilliseconds(stream, launch, launches);
        Array.Sort(times);
        return new LaunchTime(times[repetitions / 2], launches);
    }

    /// <summary>R for <paramref name="launch"/>: the launches that make one timed span last at least <see cref="SpanMs"/>.</summary>
    public static int Calibrate(AcceleratorStream stream, Action launch)
    {
        int launches = 1;
        for (int step = 0; step <= Refinements; step++)
        {
            double perLaunch = StreamTimer.MeasureMilliseconds(stream, launch, launches);
            if (perLaunch * launches >= SpanMs || launches == MaxLaunches) break;
            launches = LaunchesFor(perLaunch, launches);
        }
        return launches;
    }

    /// <summary>
    /// The launches that fill <see cref="SpanMs"/> at <paramref name="perLaunchMs"/> each, at least one more than
    /// <paramref name="current"/> (the span just timed fell short) and at most <see cref="MaxLaunches"/>.
    /// </summary>
    public static int LaunchesFor(double perLaunchMs, int current = 0)
    {
        double wanted = perLaunchMs > 0 ? Math.Ceiling(SpanMs / perLaunchMs) : MaxLaunches;
        return (int)Math.Clamp(Math.Max(wanted, current + 1.0), 1, MaxLaunches);
    }
}
