using System.Reflection;
using System.Runtime.InteropServices;

namespace Kernels.Cuda;

/// <summary>
/// Makes ILGPU find the CUDA driver on machines that ship only <c>libcuda.so.1</c>.
/// </summary>
/// <remarks>
/// ILGPU binds the driver as <c>[DllImport("cuda")]</c>; .NET probes <c>libcuda.so</c> and <c>cuda</c> but never the
/// versioned <c>libcuda.so.1</c> that a driver-only install provides, and ILGPU then silently reports zero CUDA devices
/// (docs/ilgpu.md §5). The resolver must be installed before the first ILGPU <c>Context</c> is created.
/// </remarks>
public static class CudaLibraryResolver
{
    private static readonly object Gate = new();
    private static bool installed;

    /// <summary>File names tried, in order, for the CUDA driver library.</summary>
    public static IReadOnlyList<string> DriverCandidates { get; } =
        OperatingSystem.IsWindows() ? ["nvcuda.dll"] : ["libcuda.so.1", "libcuda.so"];

    /// <summary>
    /// Installs the resolver for ILGPU's assembly once per process. Returns false when another resolver was already
    /// installed for that assembly (only one is allowed), in which case ILGPU keeps that one.
    /// </summary>
    public static bool Install()
    {
        lock (Gate)
        {
            if (installed) return true;
            try
            {
                NativeLibrary.SetDllImportResolver(typeof(ILGPU.Context).Assembly, Resolve);
                installed = true;
            }
            catch (InvalidOperationException)
            {
                return false;
            }
            return true;
        }
    }

    private static IntPtr Resolve(string libraryName, Assembly assembly, DllImportSearchPath? searchPath)
    {
        if (libraryName is "cuda" or "nvcuda" && TryLoadDriver(out var handle)) return handle;
        return IntPtr.Zero; // default probing for every other library
    }

    /// <summary>Loads the CUDA driver library by the candidate names; false when none loads.</summary>
    public static bool TryLoadDriver(out IntPtr handle)
    {
        foreach (var name in DriverCandidates)
            if (NativeLibrary.TryLoad(name, out handle)) return true;
        handle = IntPtr.Zero;
        return false;
    }
}
