using System.Reflection;
using ILGPU.Backends;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using Kernels.Cuda.Ptx;

namespace Kernels.Runtime;

/// <summary>
/// ILGPU's PTX for a kernel with <see cref="LocalDepotPromotion"/> applied: the text a CUDA device loads
/// (<see cref="KernelLoading"/>) and the text the assembler checks and the <c>kernels</c> report read (<c>Text</c>),
/// so what is checked is what runs.
/// </summary>
public static class PtxCompilation
{
    // ILGPU 1.5.3 builds a PTXCompiledKernel only inside its backend; the promoted text is wrapped with the same
    // (internal) constructor so the accelerator's own LoadKernel(CompiledKernel) loads it.
    private static readonly ConstructorInfo CompiledKernelConstructor =
        typeof(PTXCompiledKernel).GetConstructor(BindingFlags.Instance | BindingFlags.NonPublic, null,
            [typeof(ILGPU.Context), typeof(EntryPoint), typeof(CompiledKernel.KernelInfo), typeof(string)], null)
        ?? throw new MissingMethodException("ILGPU's PTXCompiledKernel(Context, EntryPoint, KernelInfo, string) constructor is missing; the library needs ILGPU 1.5.3.");

    private static readonly PropertyInfo EntryPointProperty =
        typeof(CompiledKernel).GetProperty("EntryPoint", BindingFlags.Instance | BindingFlags.NonPublic)
        ?? throw new MissingMemberException("ILGPU's CompiledKernel.EntryPoint is missing; the library needs ILGPU 1.5.3.");

    /// <summary>
    /// Compiles <paramref name="kernel"/> with <paramref name="backend"/> (a CUDA accelerator's PTX backend) and
    /// returns the compiled kernel with promoted PTX. <paramref name="autoGrouped"/> selects an implicitly grouped
    /// entry point (first parameter an index type).
    /// </summary>
    internal static PTXCompiledKernel Compile(Backend backend, MethodInfo kernel, bool autoGrouped, out DepotPromotionReport report)
    {
        var compiled = CompileRaw(backend, kernel, autoGrouped);
        string promoted = LocalDepotPromotion.Apply(compiled.PTXAssembly, out report);
        return (PTXCompiledKernel)CompiledKernelConstructor.Invoke([compiled.Context, EntryPointProperty.GetValue(compiled), compiled.Info, promoted]);
    }

    internal static PTXCompiledKernel CompileRaw(Backend backend, MethodInfo kernel, bool autoGrouped)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(kernel);
        var entry = autoGrouped
            ? EntryPointDescription.FromImplicitlyGroupedKernel(kernel)
            : EntryPointDescription.FromExplicitlyGroupedKernel(kernel);
        return (PTXCompiledKernel)backend.Compile(entry, KernelSpecialization.Empty);
    }

    /// <summary>
    /// The PTX a CUDA device of <paramref name="architecture"/> loads for <paramref name="kernel"/>, compiled without a
    /// GPU (ILGPU's PTX backend on the shared context, at the library's optimization level). For many kernels, use one
    /// <see cref="PtxCompiler"/> per thread instead.
    /// </summary>
    public static string Text(MethodInfo kernel, CudaArchitecture architecture, bool autoGrouped, out DepotPromotionReport report)
    {
        using var compiler = new PtxCompiler(architecture);
        return compiler.Text(kernel, autoGrouped, out report);
    }

    /// <summary>The PTX of a catalog entry (see <see cref="Text(MethodInfo, CudaArchitecture, bool, out DepotPromotionReport)"/>).</summary>
    public static string Text(KernelEntry entry, CudaArchitecture architecture, out DepotPromotionReport report)
    {
        ArgumentNullException.ThrowIfNull(entry);
        return Text(entry.Method, architecture, entry.AutoGrouped, out report);
    }

    /// <summary>
    /// ILGPU's PTX for a catalog entry as it comes, before <see cref="LocalDepotPromotion"/>: what devices loaded before
    /// the promotion existed, kept for before/after comparisons (the <c>kernels</c> report's <c>--raw</c>). Never loaded.
    /// </summary>
    public static string RawText(KernelEntry entry, CudaArchitecture architecture)
    {
        using var compiler = new PtxCompiler(architecture);
        return compiler.RawText(entry);
    }
}

/// <summary>
/// One ILGPU PTX backend for one architecture, for compiling many kernels without a GPU. Not thread-safe: use one per
/// thread. Compilers on several threads share the context's IL front end and produce the same text as one compiler
/// compiling one kernel at a time (checked over the whole catalog, 2026-12-04), so the <c>kernels</c> report and the
/// assembler tests compile in parallel.
/// </summary>
public sealed class PtxCompiler : IDisposable
{
    private readonly PTXBackend backend;

    /// <summary>A compiler for <paramref name="architecture"/> at ISA 8.0 (what ILGPU 1.5.3 emits for sm_80 and sm_90).</summary>
    public PtxCompiler(CudaArchitecture architecture)
    {
        Architecture = architecture;
        backend = new PTXBackend(ComputeDevice.Context, new CudaCapabilityContext(architecture), architecture, CudaInstructionSet.ISA_80, null);
    }

    /// <summary>The architecture the PTX targets.</summary>
    public CudaArchitecture Architecture { get; }

    /// <summary>The PTX a device of <see cref="Architecture"/> loads for <paramref name="kernel"/> (promoted).</summary>
    public string Text(MethodInfo kernel, bool autoGrouped, out DepotPromotionReport report) =>
        PtxCompilation.Compile(backend, kernel, autoGrouped, out report).PTXAssembly;

    /// <summary>The PTX a device of <see cref="Architecture"/> loads for a catalog entry (promoted).</summary>
    public string Text(KernelEntry entry, out DepotPromotionReport report)
    {
        ArgumentNullException.ThrowIfNull(entry);
        return Text(entry.Method, entry.AutoGrouped, out report);
    }

    /// <summary>ILGPU's PTX before promotion (see <see cref="PtxCompilation.RawText"/>).</summary>
    public string RawText(KernelEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        return PtxCompilation.CompileRaw(backend, entry.Method, entry.AutoGrouped).PTXAssembly;
    }

    /// <inheritdoc/>
    public void Dispose() => backend.Dispose();
}
