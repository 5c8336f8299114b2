using System.Diagnostics;
using System.Reflection;
using System.Text.Json;
using ILGPU.Runtime;
using Kernels.Cuda;
using Kernels.Runtime;

namespace Kernels.Bench.Tour;

/// <summary>
/// The tour: every operation verified against its CPU reference and timed on the chosen device, with achieved
/// bandwidth compared with a device-to-device copy measured in the same run.
/// </summary>
public static class TourRunner
{
    /// <summary>
    /// Runs the tour with command-line options; returns the process exit code: 0 when every row verified, 1 when a row
    /// failed verification, 2 for a bad command line (one line on stderr, nothing run) or an <c>--ops</c> pattern that
    /// matches no row.
    /// </summary>
    public static int Run(string[] args)
    {
        TourOptions options;
        try { options = TourOptions.Parse(args); }
        catch (TourUsageException e)
        {
            Console.Error.WriteLine($"tour: {e.Message}");
            return 2;
        }
        var (json, filter) = (options.Json, options.Filter);

        var device = ComputeDevice.Default;
        var context = new TourContext(device, options.Full ?? device.IsCuda);
        var all = Suites().SelectMany(s => s.Cases(context).Select(c => (s.Family, Case: c))).ToList();
        var cases = all.Where(x => filter is null || filter.IsMatch($"{x.Family} {x.Case.Op}")).ToList();
        if (context.Full && !device.IsCuda)
            Console.Error.WriteLine($"tour: warning: --full on the {device.Name} runs LLM-sized rows (up to 64M elements, 1 GiB copies): " +
                $"expect minutes per row ({cases.Count} rows selected); omit --full for the small CPU shapes.");
        if (cases.Count == 0)
        {
            Console.Error.WriteLine($"tour: --ops '{options.Pattern}' matched none of the {all.Count} rows " +
                $"(rows are matched as \"family op\", e.g. \"{all.FirstOrDefault().Family} {all.FirstOrDefault().Case?.Op}\")");
            return 2;
        }
        Console.WriteLine($"device: {device.Name}  ({(context.Full ? "full LLM shapes" : "small shapes; CPU times are not speed claims")})");
        var f = device.Facts;
        if (device.IsCuda)
            Console.WriteLine($"        SMs {f.MultiprocessorCount}, L2 {f.L2CacheBytes >> 20} MiB, smem/group opt-in {f.SharedMemoryPerGroupOptin >> 10} KiB, cc {f.ComputeCapability}");

        double copyGbPerS = MeasureCopyBandwidth(context);
        Console.WriteLine($"copy bandwidth (device to device, read + write): {copyGbPerS:F1} GB/s");

        var rows = new List<TourRow>();
        int index = 0;
        // A terminal gets one progress line rewritten in place; a log file or pipe gets one plain line per row.
        bool inPlace = !Console.IsErrorRedirected;
        foreach (var (family, c) in cases)
        {
            index++;
            string progress = $"[{index}/{cases.Count}] {family}: {c.Op} {c.Shape} {c.DType} ...";
            if (inPlace) Console.Error.Write("\r" + progress.PadRight(100));
            else Console.Error.WriteLine(progress);
            rows.Add(RunCase(context, c, copyGbPerS));
        }
        if (inPlace) Console.Error.WriteLine();
        PrintTable(rows);
        if (json is not null)
        {
            var payload = rows.Select(r => new Dictionary<string, object>
            {
                ["op"] = r.Op, ["shape"] = r.Shape, ["dtype"] = r.DType, ["device"] = r.Device,
                ["verified"] = r.Verified, ["relError"] = Finite(r.RelError), ["medianMs"] = r.MedianMs,
                ["gbPerS"] = r.GbPerS, ["tflopPerS"] = r.TflopPerS, ["pctOfCopy"] = r.PctOfCopy,
                ["copyGbPerS"] = copyGbPerS, ["launchesPerSpan"] = r.Launches, ["notes"] = r.Notes,
                ["date"] = DateTime.UtcNow.ToString("yyyy-MM-dd"),
            });
            File.WriteAllText(json, JsonSerializer.Serialize(payload, new JsonSerializerOptions { WriteIndented = true }));
            Console.WriteLine($"wrote {rows.Count} rows to {json}");
        }
        int failed = rows.Count(r => !r.Verified);
        Console.WriteLine(failed == 0 ? $"all {rows.Count} rows verified" : $"{failed} of {rows.Count} rows FAILED verification");
        return failed == 0 ? 0 : 1;
    }

    private static double Finite(double x) => double.IsFinite(x) ? x : double.MaxValue;

    /// <summary>Every <see cref="ITourSuite"/> in this assembly, ordered by family.</summary>
    public static IEnumerable<ITourSuite> Suites() =>
        typeof(TourRunner).Assembly.GetTypes()
            .Where(t => typeof(ITourSuite).IsAssignableFrom(t) && t is { IsAbstract: false, IsInterface: false })
            .Select(t => (ITourSuite)Activator.CreateInstance(t)!)
            .OrderBy(s => s.Family, StringComparer.Ordinal);

    private static TourRow RunCase(TourContext context, TourCase c, double copyGbPerS)
    {
        var device = context.Device;
        try
        {
            using var run = c.Setup(context);
            run.Launch();
            device.Synchronize();
            double err = run.Verify();
            bool ok = double.IsFinite(err) && err <= run.Bound;
            // The calibration's first timed launch is the last warm-up launch (the CPU accelerator's only one).
            int warmup = device.IsCuda ? 2 : 0, reps = device.IsCuda ? 20 : 3;
            for (int i = 0; i < warmup; i++) run.Launch();
            var (ms, launches) = LaunchTiming.Measure(device.Stream, run.Launch, reps);
            double gb = c.Bytes / (ms * 1e-3) / 1e9;
            double tf = c.Flops / (ms * 1e-3) / 1e12;
            return new TourRow(c.Op, c.Shape, c.DType, device.Name, ok, err, ms, gb, tf, 100 * gb / copyGbPerS, run.Notes, launches);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            var notes = new Dictionary<string, string> { ["error"] = e.GetType().Name + ": " + e.Message };
            return new TourRow(c.Op, c.Shape, c.DType, device.Name, false, double.PositiveInfinity, 0, 0, 0, 0, notes);
        }
    }

    /// <summary>Device-to-device copy bandwidth (bytes read + written per second), the ceiling every row is compared with.</summary>
    public static double MeasureCopyBandwidth(TourContext context)
    {
        var device = context.Device;
        long n = context.Full ? 256L << 20 : 1L << 20; // floats: 1 GiB on a GPU, 4 MiB on the CPU
        using var a = device.Allocate<float>((nint)n);
        using var b = device.Allocate<float>((nint)n);
        a.Span.Clear();
        var src = a.Span.View.AsContiguous();
        var dst = b.Span.View.AsContiguous();
        void Copy() => src.CopyTo(device.Stream, in dst);
        Copy();
        var (ms, _) = LaunchTiming.Measure(device.Stream, Copy, context.Full ? 10 : 3);
        return 2.0 * n * sizeof(float) / (ms * 1e-3) / 1e9;
    }

    private static void PrintTable(List<TourRow> rows)
    {
        Console.WriteLine();
        Console.WriteLine($"{"op",-38} {"shape",-26} {"type",-5} {"ok",-3} {"rel.err",9} {"median ms",10} {"R",5} {"GB/s",9} {"TFLOP/s",8} {"% copy",7}  notes");
        Console.WriteLine(new string('-', 136));
        foreach (var r in rows)
        {
            string notes = string.Join(", ", r.Notes.Select(kv => $"{kv.Key}={kv.Value}"));
            Console.WriteLine($"{Trim(r.Op, 38),-38} {Trim(r.Shape, 26),-26} {r.DType,-5} {(r.Verified ? "yes" : "NO"),-3} {r.RelError,9:E2} {r.MedianMs,10:F4} {r.Launches,5} {r.GbPerS,9:F1} {r.TflopPerS,8:F3} {r.PctOfCopy,7:F1}  {notes}");
        }
    }

    private static string Trim(string s, int n) => s.Length <= n ? s : s[..(n - 1)] + "…";
}
