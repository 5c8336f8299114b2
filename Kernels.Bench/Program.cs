using BenchmarkDotNet.Running;
using Kernels.Bench.Assembler;
using Kernels.Bench.Tour;

// Kernels.Bench: `tour` (default) verifies and times every operation; `kernels` is the static report of every catalog
// kernel's SASS (NVIDIA's ptxas, no GPU needed); `bdn` runs the BenchmarkDotNet suites.
var verb = args.Length > 0 ? args[0] : "tour";
switch (verb)
{
    case "tour":
        return TourRunner.Run(args.Skip(1).ToArray());
    case "kernels":
        return KernelsReport.Run(args.Skip(1).ToArray());
    case "bdn":
        BenchmarkSwitcher.FromAssembly(typeof(TourRunner).Assembly).Run(args.Skip(1).ToArray());
        return 0;
    default:
        Console.Error.WriteLine("usage: Kernels.Bench [tour [--ops REGEX] [--json FILE] [--full|--small]] | kernels [--ops REGEX] [--arch sm_80,sm_90] [--json FILE] [--ptx DIR] [--raw] | kernels --device [--ops REGEX] [--json FILE] | bdn [BenchmarkDotNet args]");
        return 2;
}
