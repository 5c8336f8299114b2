using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace Kernels.Cuda.Assembler;

/// <summary>What <c>ptxas -v</c> reports for one entry function, and its SASS.</summary>
/// <param name="Architecture">The target, e.g. <c>sm_90</c>.</param>
/// <param name="Registers">Registers per thread.</param>
/// <param name="StackBytes">Stack frame bytes per thread (local memory the code uses on purpose).</param>
/// <param name="SpillStoreBytes">Bytes spilled to local memory.</param>
/// <param name="SpillLoadBytes">Bytes reloaded from spills.</param>
/// <param name="StaticSharedBytes">Statically allocated shared memory (dynamic shared memory comes on top).</param>
/// <param name="Sass">The disassembly (<c>cuobjdump -sass</c>).</param>
public sealed record AssembledKernel(string Architecture, int Registers, int StackBytes, int SpillStoreBytes,
    int SpillLoadBytes, int StaticSharedBytes, SassListing Sass);

/// <summary>Runs NVIDIA's assembler on PTX text, as the driver's JIT would, and reads back resources and SASS.</summary>
public static partial class Ptxas
{
    /// <summary>
    /// Assembles <paramref name="ptx"/> (one entry function) for <paramref name="architecture"/> (<c>sm_80</c>,
    /// <c>sm_90</c>…) and disassembles the result. Throws <see cref="InvalidOperationException"/> with ptxas' own
    /// message when it rejects the PTX.
    /// </summary>
    public static AssembledKernel Assemble(CudaTools tools, string ptx, string architecture)
    {
        ArgumentNullException.ThrowIfNull(tools);
        ArgumentNullException.ThrowIfNull(ptx);
        string folder = Directory.CreateTempSubdirectory("kernels-ptxas-").FullName;
        try
        {
            string source = Path.Combine(folder, "kernel.ptx"), cubin = Path.Combine(folder, "kernel.cubin");
            File.WriteAllText(source, ptx);
            var (code, output) = Run(tools.Ptxas, ["-arch=" + architecture, "-v", "-o", cubin, source]);
            if (code != 0) throw new InvalidOperationException($"ptxas -arch={architecture} rejected the PTX:\n{output}");
            var (dumpCode, sass) = Run(tools.Cuobjdump, ["-sass", cubin]);
            if (dumpCode != 0) throw new InvalidOperationException($"cuobjdump -sass failed:\n{sass}");
            return new AssembledKernel(architecture,
                Number(RegistersPattern(), output), Number(StackPattern(), output), Number(SpillStorePattern(), output),
                Number(SpillLoadPattern(), output), Number(SharedPattern(), output), SassListing.Parse(sass));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static int Number(Regex pattern, string text)
    {
        var match = pattern.Match(text);
        return match.Success ? int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture) : 0;
    }

    private static (int Code, string Output) Run(string file, string[] arguments)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in arguments) start.ArgumentList.Add(a);
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {file}");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        process.WaitForExit();
        return (process.ExitCode, stdout.Result + stderr.Result);
    }

    [GeneratedRegex(@"Used (\d+) registers")]
    private static partial Regex RegistersPattern();

    [GeneratedRegex(@"(\d+) bytes stack frame")]
    private static partial Regex StackPattern();

    [GeneratedRegex(@"(\d+) bytes spill stores")]
    private static partial Regex SpillStorePattern();

    [GeneratedRegex(@"(\d+) bytes spill loads")]
    private static partial Regex SpillLoadPattern();

    [GeneratedRegex(@"(\d+) bytes smem")]
    private static partial Regex SharedPattern();
}
