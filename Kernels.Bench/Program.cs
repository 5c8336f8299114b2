using BenchmarkDotNet.Running;
using Kernels.Bench.Tour;

// Kernels.Bench: `tour` (default) verifies and times every operation; `bdn` runs the BenchmarkDotNet suites.
var verb = args.Length > 0 ? args[0] : "tour";
switch (verb)
{
    case "tour":
        return TourRunner.Run(args.Skip(1).ToArray());
    case "bdn":
        BenchmarkSwitcher.FromAssembly(typeof(TourRunner).Assembly).Run(args.Skip(1).ToArray());
        return 0;
    default:
        Console.Error.WriteLine("usage: Kernels.Bench [tour [--ops REGEX] [--json FILE] [--full|--small]] | bdn [BenchmarkDotNet args]");
        return 2;
}
