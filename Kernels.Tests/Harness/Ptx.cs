using System.Reflection;
using ILGPU.Runtime.Cuda;
using Kernels.Runtime;

namespace Kernels.Tests.Harness;

/// <summary>
/// Compiles a kernel to PTX text without a GPU, exactly as a CUDA device loads it (<see cref="PtxCompilation"/>: ILGPU's
/// PTX backend, then the local-depot promotion), so tests assert on the emitted instructions (vector loads,
/// <c>mma.sync</c>, <c>cp.async</c>) of the text that runs.
/// </summary>
public static class Ptx
{
    /// <summary>Compiles an explicitly grouped kernel (first parameter not an index type) or an implicitly grouped one.</summary>
    public static string Compile(MethodInfo kernel, CudaArchitecture? architecture = null, bool explicitlyGrouped = true)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        return PtxCompilation.Text(kernel, architecture ?? CudaArchitecture.SM_80, autoGrouped: !explicitlyGrouped, out _);
    }

    /// <summary>Finds a static method by name (public or not) on a type, for kernels that are private.</summary>
    public static MethodInfo Method(Type type, string name, params Type[] genericArguments)
    {
        var m = type.GetMethod(name, BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static)
                ?? throw new MissingMethodException(type.FullName, name);
        return genericArguments.Length > 0 ? m.MakeGenericMethod(genericArguments) : m;
    }
}
