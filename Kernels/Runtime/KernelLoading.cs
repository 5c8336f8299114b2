using System.Reflection;
using ILGPU;
using ILGPU.Backends;
using ILGPU.Backends.EntryPoints;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using Kernels.Cuda.Ptx;

namespace Kernels.Runtime;

/// <summary>
/// The one way the library loads a kernel. Every load (1) must name a kernel that <see cref="KernelCatalog"/> lists —
/// an unlisted kernel throws, so nothing escapes the catalog's static checks — and (2) on a CUDA device goes through
/// <see cref="PtxCompilation.Compile"/>: ILGPU's PTX with the inline-asm operand depots promoted to registers, the same
/// text the assembler tests check. On the CPU accelerator it is ILGPU's own loader.
/// </summary>
internal static class KernelLoading
{
    /// <summary>Loads an explicitly grouped kernel method as a launcher of type <typeparamref name="TDelegate"/>.</summary>
    public static TDelegate Load<TDelegate>(Accelerator accelerator, MethodInfo method, bool autoGrouped) where TDelegate : Delegate
    {
        KernelCatalog.Require(method);
        if (accelerator is not CudaAccelerator)
            return autoGrouped
                ? accelerator.LoadAutoGroupedKernel(method).CreateLauncherDelegate<TDelegate>()
                : accelerator.LoadKernel<TDelegate>(method);
        var compiled = PtxCompilation.Compile(accelerator.GetBackend(), method, autoGrouped, out _);
        var kernel = autoGrouped ? accelerator.LoadAutoGroupedKernel(compiled) : accelerator.LoadKernel(compiled);
        return kernel.CreateLauncherDelegate<TDelegate>();
    }

    /// <summary>
    /// Loads a catalog entry on a CUDA accelerator exactly as the operations do (promoted PTX, the driver's JIT), without
    /// a launcher: for reading what the driver made of it (<c>KernelAttributes</c>). Returns the kernel and the promotion.
    /// </summary>
    public static (Kernel Kernel, DepotPromotionReport Promotion) LoadEntry(CudaAccelerator accelerator, KernelEntry entry)
    {
        ArgumentNullException.ThrowIfNull(accelerator);
        ArgumentNullException.ThrowIfNull(entry);
        var compiled = PtxCompilation.Compile(accelerator.GetBackend(), entry.Method, entry.AutoGrouped, out var report);
        return (entry.AutoGrouped ? accelerator.LoadAutoGroupedKernel(compiled) : accelerator.LoadKernel(compiled), report);
    }

    /// <summary>Loads an explicitly grouped kernel of 1 parameter (see the class remarks).</summary>
    public static Action<AcceleratorStream, KernelConfig, T1> LoadCatalogKernel<T1>(this Accelerator accelerator,
        Action<T1> kernel) where T1 : struct =>
        Load<Action<AcceleratorStream, KernelConfig, T1>>(accelerator, kernel.Method, autoGrouped: false);

    /// <summary>Loads an explicitly grouped kernel of 2 parameters (see the class remarks).</summary>
    public static Action<AcceleratorStream, KernelConfig, T1, T2> LoadCatalogKernel<T1, T2>(this Accelerator accelerator,
        Action<T1, T2> kernel) where T1 : struct where T2 : struct =>
        Load<Action<AcceleratorStream, KernelConfig, T1, T2>>(accelerator, kernel.Method, autoGrouped: false);

    /// <summary>Loads an explicitly grouped kernel of 3 parameters (see the class remarks).</summary>
    public static Action<AcceleratorStream, KernelConfig, T1, T2, T3> LoadCatalogKernel<T1, T2, T3>(this Accelerator accelerator,
        Action<T1, T2, T3> kernel) where T1 : struct where T2 : struct where T3 : struct =>
        Load<Action<AcceleratorStream, KernelConfig, T1, T2, T3>>(accelerator, kernel.Method, autoGrouped: false);

    /// <summary>Loads an explicitly grouped kernel of 4 parameters (see the class remarks).</summary>
    public static Action<AcceleratorStream, KernelConfig, T1, T2, T3, T4> LoadCatalogKernel<T1, T2, T3, T4>(this Accelerator accelerator,
        Action<T1, T2, T3, T4> kernel) where T1 : struct where T2 : struct where T3 : struct where T4 : struct =>
        Load<Action<AcceleratorStream, KernelConfig, T1, T2, T3, T4>>(accelerator, kernel.Method, autoGrouped: false);

    /// <summary>Loads an explicitly grouped kernel of 5 parameters (see the class remarks).</summary>
    public static Action<AcceleratorStream, KernelConfig, T1, T2, T3, T4, T5> LoadCatalogKernel<T1, T2, T3, T4, T5>(this Accelerator accelerator,
        Action<T1, T2, T3, T4, T5> kernel) where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct =>
        Load<Action<AcceleratorStream, KernelConfig, T1, T2, T3, T4, T5>>(accelerator, kernel.Method, autoGrouped: false);

    /// <summary>Loads an explicitly grouped kernel of 6 parameters (see the class remarks).</summary>
    public static Action<AcceleratorStream, KernelConfig, T1, T2, T3, T4, T5, T6> LoadCatalogKernel<T1, T2, T3, T4, T5, T6>(this Accelerator accelerator,
        Action<T1, T2, T3, T4, T5, T6> kernel) where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct =>
        Load<Action<AcceleratorStream, KernelConfig, T1, T2, T3, T4, T5, T6>>(accelerator, kernel.Method, autoGrouped: false);

    /// <summary>Loads an explicitly grouped kernel of 7 parameters (see the class remarks).</summary>
    public static Action<AcceleratorStream, KernelConfig, T1, T2, T3, T4, T5, T6, T7> LoadCatalogKernel<T1, T2, T3, T4, T5, T6, T7>(this Accelerator accelerator,
        Action<T1, T2, T3, T4, T5, T6, T7> kernel) where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct =>
        Load<Action<AcceleratorStream, KernelConfig, T1, T2, T3, T4, T5, T6, T7>>(accelerator, kernel.Method, autoGrouped: false);

    /// <summary>Loads an explicitly grouped kernel of 8 parameters (see the class remarks).</summary>
    public static Action<AcceleratorStream, KernelConfig, T1, T2, T3, T4, T5, T6, T7, T8> LoadCatalogKernel<T1, T2, T3, T4, T5, T6, T7, T8>(this Accelerator accelerator,
        Action<T1, T2, T3, T4, T5, T6, T7, T8> kernel) where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct where T8 : struct =>
        Load<Action<AcceleratorStream, KernelConfig, T1, T2, T3, T4, T5, T6, T7, T8>>(accelerator, kernel.Method, autoGrouped: false);

    /// <summary>Loads an explicitly grouped kernel of 9 parameters (see the class remarks).</summary>
    public static Action<AcceleratorStream, KernelConfig, T1, T2, T3, T4, T5, T6, T7, T8, T9> LoadCatalogKernel<T1, T2, T3, T4, T5, T6, T7, T8, T9>(this Accelerator accelerator,
        Action<T1, T2, T3, T4, T5, T6, T7, T8, T9> kernel) where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct where T8 : struct where T9 : struct =>
        Load<Action<AcceleratorStream, KernelConfig, T1, T2, T3, T4, T5, T6, T7, T8, T9>>(accelerator, kernel.Method, autoGrouped: false);

    /// <summary>Loads an explicitly grouped kernel of 10 parameters (see the class remarks).</summary>
    public static Action<AcceleratorStream, KernelConfig, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10> LoadCatalogKernel<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10>(this Accelerator accelerator,
        Action<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10> kernel) where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct where T8 : struct where T9 : struct where T10 : struct =>
        Load<Action<AcceleratorStream, KernelConfig, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10>>(accelerator, kernel.Method, autoGrouped: false);

    /// <summary>Loads an explicitly grouped kernel of 11 parameters (see the class remarks).</summary>
    public static Action<AcceleratorStream, KernelConfig, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11> LoadCatalogKernel<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11>(this Accelerator accelerator,
        Action<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11> kernel) where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct where T8 : struct where T9 : struct where T10 : struct where T11 : struct =>
        Load<Action<AcceleratorStream, KernelConfig, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11>>(accelerator, kernel.Method, autoGrouped: false);

    /// <summary>Loads an explicitly grouped kernel of 12 parameters (see the class remarks).</summary>
    public static Action<AcceleratorStream, KernelConfig, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12> LoadCatalogKernel<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12>(this Accelerator accelerator,
        Action<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12> kernel) where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct where T8 : struct where T9 : struct where T10 : struct where T11 : struct where T12 : struct =>
        Load<Action<AcceleratorStream, KernelConfig, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12>>(accelerator, kernel.Method, autoGrouped: false);

    /// <summary>Loads an explicitly grouped kernel of 13 parameters (see the class remarks).</summary>
    public static Action<AcceleratorStream, KernelConfig, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13> LoadCatalogKernel<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13>(this Accelerator accelerator,
        Action<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13> kernel) where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct where T8 : struct where T9 : struct where T10 : struct where T11 : struct where T12 : struct where T13 : struct =>
        Load<Action<AcceleratorStream, KernelConfig, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13>>(accelerator, kernel.Method, autoGrouped: false);

    /// <summary>Loads an explicitly grouped kernel of 14 parameters (see the class remarks).</summary>
    public static Action<AcceleratorStream, KernelConfig, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13, T14> LoadCatalogKernel<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13, T14>(this Accelerator accelerator,
        Action<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13, T14> kernel) where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct where T8 : struct where T9 : struct where T10 : struct where T11 : struct where T12 : struct where T13 : struct where T14 : struct =>
        Load<Action<AcceleratorStream, KernelConfig, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13, T14>>(accelerator, kernel.Method, autoGrouped: false);

    /// <summary>Loads an implicitly grouped kernel of an index and 1 parameter, launched with the accelerator's warp-sized groups.</summary>
    public static Action<AcceleratorStream, TIndex, T1> LoadCatalogAutoGroupedKernel<TIndex, T1>(this Accelerator accelerator,
        Action<TIndex, T1> kernel) where TIndex : struct, IIndex where T1 : struct =>
        Load<Action<AcceleratorStream, TIndex, T1>>(accelerator, kernel.Method, autoGrouped: true);

    /// <summary>Loads an implicitly grouped kernel of an index and 2 parameters, launched with the accelerator's warp-sized groups.</summary>
    public static Action<AcceleratorStream, TIndex, T1, T2> LoadCatalogAutoGroupedKernel<TIndex, T1, T2>(this Accelerator accelerator,
        Action<TIndex, T1, T2> kernel) where TIndex : struct, IIndex where T1 : struct where T2 : struct =>
        Load<Action<AcceleratorStream, TIndex, T1, T2>>(accelerator, kernel.Method, autoGrouped: true);

    /// <summary>Loads an implicitly grouped kernel of an index and 3 parameters, launched with the accelerator's warp-sized groups.</summary>
    public static Action<AcceleratorStream, TIndex, T1, T2, T3> LoadCatalogAutoGroupedKernel<TIndex, T1, T2, T3>(this Accelerator accelerator,
        Action<TIndex, T1, T2, T3> kernel) where TIndex : struct, IIndex where T1 : struct where T2 : struct where T3 : struct =>
        Load<Action<AcceleratorStream, TIndex, T1, T2, T3>>(accelerator, kernel.Method, autoGrouped: true);

    /// <summary>Loads an implicitly grouped kernel of an index and 4 parameters, launched with the accelerator's warp-sized groups.</summary>
    public static Action<AcceleratorStream, TIndex, T1, T2, T3, T4> LoadCatalogAutoGroupedKernel<TIndex, T1, T2, T3, T4>(this Accelerator accelerator,
        Action<TIndex, T1, T2, T3, T4> kernel) where TIndex : struct, IIndex where T1 : struct where T2 : struct where T3 : struct where T4 : struct =>
        Load<Action<AcceleratorStream, TIndex, T1, T2, T3, T4>>(accelerator, kernel.Method, autoGrouped: true);

    /// <summary>Loads an implicitly grouped kernel of an index and 5 parameters, launched with the accelerator's warp-sized groups.</summary>
    public static Action<AcceleratorStream, TIndex, T1, T2, T3, T4, T5> LoadCatalogAutoGroupedKernel<TIndex, T1, T2, T3, T4, T5>(this Accelerator accelerator,
        Action<TIndex, T1, T2, T3, T4, T5> kernel) where TIndex : struct, IIndex where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct =>
        Load<Action<AcceleratorStream, TIndex, T1, T2, T3, T4, T5>>(accelerator, kernel.Method, autoGrouped: true);

    /// <summary>Loads an implicitly grouped kernel of an index and 6 parameters, launched with the accelerator's warp-sized groups.</summary>
    public static Action<AcceleratorStream, TIndex, T1, T2, T3, T4, T5, T6> LoadCatalogAutoGroupedKernel<TIndex, T1, T2, T3, T4, T5, T6>(this Accelerator accelerator,
        Action<TIndex, T1, T2, T3, T4, T5, T6> kernel) where TIndex : struct, IIndex where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct =>
        Load<Action<AcceleratorStream, TIndex, T1, T2, T3, T4, T5, T6>>(accelerator, kernel.Method, autoGrouped: true);

    /// <summary>Loads an implicitly grouped kernel of an index and 7 parameters, launched with the accelerator's warp-sized groups.</summary>
    public static Action<AcceleratorStream, TIndex, T1, T2, T3, T4, T5, T6, T7> LoadCatalogAutoGroupedKernel<TIndex, T1, T2, T3, T4, T5, T6, T7>(this Accelerator accelerator,
        Action<TIndex, T1, T2, T3, T4, T5, T6, T7> kernel) where TIndex : struct, IIndex where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct =>
        Load<Action<AcceleratorStream, TIndex, T1, T2, T3, T4, T5, T6, T7>>(accelerator, kernel.Method, autoGrouped: true);

    /// <summary>Loads an implicitly grouped kernel of an index and 8 parameters, launched with the accelerator's warp-sized groups.</summary>
    public static Action<AcceleratorStream, TIndex, T1, T2, T3, T4, T5, T6, T7, T8> LoadCatalogAutoGroupedKernel<TIndex, T1, T2, T3, T4, T5, T6, T7, T8>(this Accelerator accelerator,
        Action<TIndex, T1, T2, T3, T4, T5, T6, T7, T8> kernel) where TIndex : struct, IIndex where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct where T8 : struct =>
        Load<Action<AcceleratorStream, TIndex, T1, T2, T3, T4, T5, T6, T7, T8>>(accelerator, kernel.Method, autoGrouped: true);
}
