using System.Collections.Concurrent;
using ILGPU.Runtime.Cuda;
using Kernels.Cuda.Assembler;
using Kernels.Runtime;

namespace Kernels.Tests.Harness;

/// <summary>
/// NVIDIA's assembler for tests: the tools (<c>scripts/fetch-cuda-tools.sh</c>), and each catalog kernel's analysis
/// per architecture, compiled once per test run and shared by every test that reads it.
/// </summary>
public static class Assembler
{
    private static readonly ConcurrentDictionary<(string Kernel, string Arch), Lazy<KernelAnalysis>> Analyses = new();

    /// <summary>The architectures every catalog kernel is checked for.</summary>
    public static readonly string[] Architectures = ["sm_80", "sm_90"];

    /// <summary>
    /// The tools, or: in CI (<c>CI=true</c>, where <c>.ci/run</c> fetches them) a failure, elsewhere a skip that says
    /// how to get them.
    /// </summary>
    public static CudaTools RequireTools()
    {
        var tools = CudaTools.Find();
        if (tools is not null) return tools;
        if (string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase))
            throw new InvalidOperationException("CI=true but " + CudaTools.MissingMessage);
        throw Xunit.Sdk.SkipException.ForSkip(CudaTools.MissingMessage);
    }

    /// <summary>The catalog entry named <paramref name="name"/> (<see cref="KernelEntry.Name"/>).</summary>
    public static KernelEntry Entry(string name) =>
        KernelCatalog.All.SingleOrDefault(e => e.Name == name) ?? throw new ArgumentException($"no catalog kernel {name}", nameof(name));

    /// <summary>
    /// <paramref name="entry"/> compiled as a device of <paramref name="architecture"/> loads it (promoted PTX),
    /// assembled by ptxas and read back. Cached per kernel and architecture.
    /// </summary>
    public static KernelAnalysis Analyze(KernelEntry entry, string architecture)
    {
        var tools = RequireTools();
        _ = WarmUp.Value;
        return Get(tools, entry, architecture);
    }

    private static KernelAnalysis Get(CudaTools tools, KernelEntry entry, string architecture) =>
        Analyses.GetOrAdd((entry.Name, architecture), _ => new Lazy<KernelAnalysis>(() =>
        {
            string ptx = PtxCompilation.Text(entry, ToCuda(architecture), out var report);
            return KernelAnalysis.Of(entry, tools, ptx, architecture, report.Promoted);
        })).Value;

    // The catalog theory asks for one kernel at a time; compiling the whole catalog on every core in the background
    // (PtxCompilation is safe on several threads) lets later rows find their analysis ready.
    private static readonly Lazy<Task> WarmUp = new(() => Task.Run(() =>
    {
        if (CudaTools.Find() is not { } tools) return;
        var work = KernelCatalog.All.SelectMany(e => Architectures.Select(a => (e, a)));
        Parallel.ForEach(work, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(2, Environment.ProcessorCount) }, item =>
        {
            try { Get(tools, item.e, item.a); }
            catch (Exception) { /* the row that asks for it rethrows from its own Lazy */ }
        });
    }));

    /// <summary>The ILGPU architecture for <c>sm_80</c> or <c>sm_90</c>.</summary>
    public static CudaArchitecture ToCuda(string architecture) => architecture switch
    {
        "sm_80" => CudaArchitecture.SM_80,
        "sm_90" => CudaArchitecture.SM_90,
        _ => throw new ArgumentOutOfRangeException(nameof(architecture), architecture, "sm_80 or sm_90"),
    };
}
