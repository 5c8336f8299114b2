using System.Reflection;
using ILGPU;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using Kernels.Runtime;

namespace Kernels.Tests.Harness;

/// <summary>
/// Compiles a kernel to PTX text without a GPU through ILGPU's <see cref="PTXBackend"/>, so tests can assert on the
/// emitted instructions (vector loads, <c>mma.sync</c>, <c>cp.async</c>) and that the kernel compiles for sm_80 and sm_90.
/// </summary>
public static class Ptx
{
    private static readonly object Gate = new();

    /// <summary>Compiles an explicitly grouped kernel (first parameter not an index type) or an implicitly grouped one.</summary>
    public static string Compile(MethodInfo kernel, CudaArchitecture? architecture = null, bool explicitlyGrouped = true)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        var arch = architecture ?? CudaArchitecture.SM_80;
        lock (Gate) // the backend is not documented as thread-safe
        {
            using var backend = new PTXBackend(ComputeDevice.Context, new CudaCapabilityContext(arch), arch, CudaInstructionSet.ISA_80, null);
            var entry = explicitlyGrouped
                ? EntryPointDescription.FromExplicitlyGroupedKernel(kernel)
                : EntryPointDescription.FromImplicitlyGroupedKernel(kernel);
            var compiled = (PTXCompiledKernel)backend.Compile(entry, KernelSpecialization.Empty);
            return compiled.PTXAssembly;
        }
    }

    /// <summary>Finds a static method by name (public or not) on a type, for kernels that are private.</summary>
    public static MethodInfo Method(Type type, string name, params Type[] genericArguments)
    {
        var m = type.GetMethod(name, BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static)
                ?? throw new MissingMethodException(type.FullName, name);
        return genericArguments.Length > 0 ? m.MakeGenericMethod(genericArguments) : m;
    }
}
