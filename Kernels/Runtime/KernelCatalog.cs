using System.Collections.Frozen;
using System.Reflection;
using Kernels.Cuda.Primitives;
using Kernels.Dense;
using Kernels.Engine;
using Kernels.Lora;
using Kernels.LowRank;
using Kernels.Optimizers;
using Kernels.Quantization;
using Kernels.Sparse;
using Kernels.SpQR;
using Kernels.Tensors;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Runtime;

/// <summary>Instructions a kernel's design claims, checked in the SASS that NVIDIA's assembler produces for it.</summary>
[Flags]
public enum SassClaims
{
    /// <summary>No instruction claim beyond the universal ones (no local memory, no spills).</summary>
    None = 0,
    /// <summary>Tensor cores: <c>HMMA.16816.F32</c> (mma.sync m16n8k16, f32 accumulate).</summary>
    Hmma = 1,
    /// <summary>Fragments from shared memory by <c>LDSM</c> (ldmatrix).</summary>
    Ldsm = 2,
    /// <summary>16-byte asynchronous global→shared copies: <c>LDGSTS.E.BYPASS.128</c> (cp.async.cg 16).</summary>
    CpAsync16 = 4,
    /// <summary>16-byte global loads: <c>LDG.E.128</c> (any cache qualifier).</summary>
    Load16 = 8,
    /// <summary>The tensor-core mainloop: HMMA, LDSM and cp.async together.</summary>
    TensorCoreMainloop = Hmma | Ldsm | CpAsync16,
}

/// <summary>
/// One kernel the library can launch: the exact specialization, its launch shape on a CUDA device, the occupancy its
/// design needs and the instructions it claims.
/// </summary>
/// <param name="Family">The family folder the kernel belongs to.</param>
/// <param name="Method">The kernel method, closed over its type arguments (the specialization ILGPU compiles).</param>
/// <param name="AutoGrouped">True for an implicitly grouped kernel (index first parameter).</param>
/// <param name="GroupSize">Threads per group on a CUDA device.</param>
/// <param name="DynamicSharedBytes">The most dynamic shared memory a launch requests on a CUDA device.</param>
/// <param name="TargetGroupsPerSM">Groups that must be able to reside on one H200 SM at once (registers, shared
/// memory and threads allowing) for the design to hide its latency.</param>
/// <param name="Claims">Instructions the design claims.</param>
public sealed record KernelEntry(string Family, MethodInfo Method, bool AutoGrouped, int GroupSize, int DynamicSharedBytes,
    int TargetGroupsPerSM, SassClaims Claims)
{
    /// <summary>A readable unique name: <c>Type.Method&lt;type arguments&gt;</c>.</summary>
    public string Name { get; } = KernelCatalog.NameOf(Method);

    /// <summary>True for the tensor-core kernels (those that claim HMMA).</summary>
    public bool UsesTensorCores => Claims.HasFlag(SassClaims.Hmma);
}

/// <summary>
/// Every kernel the library can launch, including every tile-engine specialization (shape × mma kind × producer ×
/// epilogue) that a public operation reaches, on any device. <see cref="KernelLoading"/> refuses to load a library
/// kernel that is not listed here, so the assembler checks (each entry assembled for sm_80 and sm_90: no stack, no
/// spills, occupancy target met, claimed instructions present) cover everything that can run. Kernels whose
/// specialization involves a type from outside the library (a user's producer or epilogue, a test's kernel) are
/// extension points and are not listed.
/// </summary>
public static class KernelCatalog
{
    private static readonly Lazy<IReadOnlyList<KernelEntry>> Entries = new(Build);
    private static readonly Lazy<FrozenDictionary<string, KernelEntry>> ByName =
        new(() => Entries.Value.ToFrozenDictionary(e => e.Name));

    /// <summary>All entries, grouped by family.</summary>
    public static IReadOnlyList<KernelEntry> All => Entries.Value;

    /// <summary>The entry for a kernel method, or null when the catalog does not list it.</summary>
    public static KernelEntry? Find(MethodInfo method)
    {
        ArgumentNullException.ThrowIfNull(method);
        return ByName.Value.GetValueOrDefault(NameOf(method));
    }

    /// <summary>The name <see cref="KernelEntry.Name"/> gives a kernel method.</summary>
    public static string NameOf(MethodInfo method)
    {
        ArgumentNullException.ThrowIfNull(method);
        string name = (method.DeclaringType?.Name ?? "?") + "." + method.Name;
        return method.IsGenericMethod ? name + "<" + string.Join(", ", method.GetGenericArguments().Select(ShortName)) + ">" : name;
    }

    /// <summary>Throws when <paramref name="method"/> is a library kernel the catalog does not list.</summary>
    internal static void Require(MethodInfo method)
    {
        if (!IsLibraryKernel(method) || Find(method) is not null) return;
        throw new InvalidOperationException(
            $"Kernel {NameOf(method)} is not in the kernel catalog (Kernels/Runtime/KernelCatalog.cs). Every kernel the " +
            "library launches must be listed there so the assembler checks cover it.");
    }

    private static bool IsLibraryKernel(MethodInfo method)
    {
        var library = typeof(KernelCatalog).Assembly;
        if (method.DeclaringType?.Assembly != library) return false;
        return !method.GetGenericArguments().Any(t => FromOutside(t, library));
    }

    private static bool FromOutside(Type type, Assembly library) =>
        !(type.Assembly == library || type.Assembly == typeof(Mma).Assembly || type.Assembly == typeof(ILGPU.Half).Assembly
          || type.Assembly == typeof(object).Assembly)
        || (type.IsGenericType && type.GetGenericArguments().Any(t => FromOutside(t, library)));

    private static string ShortName(Type type) => type.IsGenericType
        ? type.Name[..type.Name.IndexOf('`')] + "<" + string.Join(", ", type.GetGenericArguments().Select(ShortName)) + ">"
        : type.Name;

    // ---- the list -------------------------------------------------------------------------------------------------

    private const int Elementwise = 256;          // ComputeDevice.ElementwiseGroupSize on a GPU
    private const int ElementwiseTarget = 4;      // 1024 resident threads: half an SM, enough for streaming kernels

    private static readonly (Type Mma, Type Element, Type Convert, Type Word)[] HalfKinds =
    [
        (typeof(F16Mma), typeof(DeviceHalf), typeof(F16), typeof(F16Word)),
        (typeof(BF16Mma), typeof(BFloat16), typeof(BF16), typeof(BF16Word)),
    ];

    private static readonly Type[] AllShapes = [typeof(SkinnyTile), typeof(WideTile), typeof(LargeTile)];

    private static IReadOnlyList<KernelEntry> Build()
    {
        var list = new List<KernelEntry>();
        Quantization(list);
        Optimizers(list);
        DenseFamily(list);
        SparseFamily(list);
        SpqrFamily(list);
        LoraFamily(list);
        LowRankFamily(list);
        EngineExtensions(list);
        // Fail loudly on a duplicate: two entries with one name would hide one of them from the checks.
        var duplicate = list.GroupBy(e => e.Name).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null) throw new InvalidOperationException($"Kernel catalog lists {duplicate.Key} twice.");
        return list;
    }

    private static void Quantization(List<KernelEntry> list)
    {
        (Type, Type)[] lanes = [(typeof(float), typeof(F32Lanes)), (typeof(DeviceHalf), typeof(F16Lanes)), (typeof(BFloat16), typeof(BF16Lanes))];
        foreach (var (t, l) in lanes)
        {
            // Quantize stages a tile of max(blockSize, 256 threads × 32 elements) floats.
            list.Add(Entry("Quantization", typeof(BlockwiseKernels), nameof(BlockwiseKernels.Quantize), [t, l],
                BlockwiseKernels.MaxGroupSize, 4 * Math.Max(Blockwise.MaxBlockSize, BlockwiseKernels.MaxGroupSize * 32), 2, SassClaims.Load16));
            list.Add(Entry("Quantization", typeof(BlockwiseKernels), nameof(BlockwiseKernels.Dequantize), [t, l],
                BlockwiseKernels.MaxGroupSize, 0, ElementwiseTarget, SassClaims.Load16));
        }
        list.Add(Entry("Quantization", typeof(BlockwiseKernels), nameof(BlockwiseKernels.CanonicalSumPass), [],
            BlockwiseKernels.MaxGroupSize, 0, ElementwiseTarget, SassClaims.None));
    }

    private static void Optimizers(List<KernelEntry> list)
    {
        (Type Param, Type Element)[] parameters =
            [(typeof(float), typeof(F32Parameter)), (typeof(DeviceHalf), typeof(F16Parameter)), (typeof(BFloat16), typeof(BF16Parameter))];
        var rules = typeof(KernelCatalog).Assembly.GetTypes()
            .Where(t => t.IsValueType && !t.IsGenericTypeDefinition && typeof(IUpdateRule).IsAssignableFrom(t))
            .OrderBy(t => t.Name, StringComparer.Ordinal).ToArray();
        // The quantized step stages two states' tiles and code tables: at the largest block size one block a tile.
        int quantizedShared = 4 * (2 * StepLaunch.SlotsPerBlock + 2 * (Optimizer8BitState.MaxBlockSize + 2 * StepLaunch.TableFloats));
        foreach (var (param, element) in parameters)
        {
            (Type, Type)[] grads = param == typeof(float)
                ? [(typeof(float), typeof(F32))]
                : [(param, ConverterOf(param)), (typeof(float), typeof(F32))];
            foreach (var (grad, convert) in grads)
                foreach (var rule in rules)
                {
                    Type[] args = [param, element, grad, convert, rule];
                    list.Add(Entry("Optimizers", typeof(Optimizer8BitKernels), nameof(Optimizer8BitKernels.QuantizedStep), args,
                        256, quantizedShared, 2, SassClaims.None));
                    list.Add(Entry("Optimizers", typeof(Optimizer8BitKernels), nameof(Optimizer8BitKernels.F32Step), args,
                        256, 0, ElementwiseTarget, SassClaims.None));
                }
        }
        // Percentile clipping: the block partials of ‖g‖² per gradient type, and the one-group finish.
        foreach (var grad in new[] { typeof(float), typeof(DeviceHalf), typeof(BFloat16) })
            list.Add(Entry("Optimizers", typeof(GradientNormKernels), nameof(GradientNormKernels.SquaredNormPartials),
                [grad, grad == typeof(float) ? typeof(F32) : ConverterOf(grad)], Elementwise, 0, ElementwiseTarget, SassClaims.None));
        list.Add(Entry("Optimizers", typeof(GradientNormKernels), nameof(GradientNormKernels.Finish), [],
            GradientNormKernels.FinishGroupSize, 0, 1, SassClaims.None));
    }

    private static void DenseFamily(List<KernelEntry> list)
    {
        foreach (var (mma, element, convert, _) in HalfKinds)
        {
            var store = Store(element, convert);
            foreach (var shape in AllShapes)
                EngineWithSplits(list, "Dense", shape, mma, typeof(DenseWeightProducer), store);
            list.Add(Entry("Dense", typeof(GemvKernel), nameof(GemvKernel.Kernel), [element, convert, mma],
                GemvKernel.GroupSize, 0, ElementwiseTarget, SassClaims.Load16));
        }
    }

    private static void SparseFamily(List<KernelEntry> list)
    {
        foreach (var (mma, element, convert, _) in HalfKinds)
            foreach (var shape in AllShapes)
                EngineWithSplits(list, "Sparse", shape, mma, typeof(TiledCslTileProducer), Store(element, convert));
        list.Add(Entry("Sparse", typeof(TiledCslDeviceDecoder), "DecodeKernel", [], Elementwise, 0, ElementwiseTarget, SassClaims.None));
    }

    private static void SpqrFamily(List<KernelEntry> list)
    {
        foreach (var shape in AllShapes)
            EngineWithSplits(list, "SpQR", shape, typeof(F16Mma), typeof(SpqrTileProducer), Store(typeof(DeviceHalf), typeof(F16)));
        list.Add(Entry("SpQR", typeof(SpqrDecodeKernels), nameof(SpqrDecodeKernels.Dense), [], Elementwise, 0, ElementwiseTarget, SassClaims.None));
        list.Add(Entry("SpQR", typeof(SpqrDecodeKernels), nameof(SpqrDecodeKernels.Outliers), [], Elementwise, 0, ElementwiseTarget, SassClaims.None));
        list.Add(Entry("SpQR", typeof(SpqrGatherKernel), nameof(SpqrGatherKernel.Kernel), [], Elementwise, 0, ElementwiseTarget, SassClaims.None));
        list.Add(Entry("SpQR", typeof(SpqrGemvKernel), nameof(SpqrGemvKernel.Kernel), [], 256, 0, ElementwiseTarget, SassClaims.Load16));
    }

    private static void LoraFamily(List<KernelEntry> list)
    {
        Type[] maps = [typeof(SingleLoraAdapter), typeof(PooledLoraAdapters)];
        Type[] loraShapes = [typeof(SkinnyTile), typeof(WideTile)];
        foreach (var (mma, element, convert, word) in HalfKinds)
        {
            foreach (var shape in loraShapes)
            {
                foreach (var map in maps)
                    EngineWithSplits(list, "Lora", shape, mma, typeof(DenseWeightProducer),
                        typeof(LoraExpandEpilogue<,,>).MakeGenericType(element, convert, map));
                var dx = typeof(LoraDxEpilogue<,>).MakeGenericType(element, convert);
                EngineWithSplits(list, "Lora", shape, mma, typeof(LoraTransposedWeightProducer), dx);
                var quantized = typeof(LoraQuantizedWeightProducer<>).MakeGenericType(mma);
                EngineWithSplits(list, "Lora", shape, mma, quantized,
                    typeof(LoraExpandEpilogue<,,>).MakeGenericType(element, convert, typeof(SingleLoraAdapter)));
                EngineWithSplits(list, "Lora", shape, mma, quantized, dx);
            }
            list.Add(Entry("Lora", typeof(LoraBgmv), nameof(LoraBgmv.Kernel), [element, convert], LoraRowProduct.MaxGroupSize, 0, ElementwiseTarget, SassClaims.None));
            list.Add(Entry("Lora", typeof(LoraDsDbSweep), nameof(LoraDsDbSweep.Kernel),
                [element, convert, typeof(HalfWide<,>).MakeGenericType(element, word)], LoraRowProduct.MaxGroupSize, 0, ElementwiseTarget, SassClaims.None));
        }
        list.Add(Entry("Lora", typeof(LoraDsDbSweep), nameof(LoraDsDbSweep.Kernel), [typeof(float), typeof(F32), typeof(F32Wide)],
            LoraRowProduct.MaxGroupSize, 0, ElementwiseTarget, SassClaims.None));
        foreach (var (element, convert) in AllElements())
        {
            foreach (var map in maps)
                list.Add(Entry("Lora", typeof(LoraRowProduct), nameof(LoraRowProduct.Kernel), [element, convert, map],
                    LoraRowProduct.MaxGroupSize, 0, ElementwiseTarget, SassClaims.None));
            list.Add(Entry("Lora", typeof(LoraColumnProduct), nameof(LoraColumnProduct.Kernel), [element, convert],
                LoraRowProduct.MaxGroupSize, 0, ElementwiseTarget, SassClaims.None));
        }
        list.Add(Entry("Lora", typeof(LoraColumnProduct), nameof(LoraColumnProduct.SumChunksKernel), [], Elementwise, 0, ElementwiseTarget, SassClaims.None));
    }

    private static void LowRankFamily(List<KernelEntry> list)
    {
        Type[] layouts = [typeof(NormalLayout), typeof(TransposedLayout)];
        foreach (var a in layouts)
            foreach (var b in layouts)
                list.Add(Entry("LowRank", typeof(SimtGemm), nameof(SimtGemm.GemmKernel), [a, b], 256, 0, 2, SassClaims.Load16));
        list.Add(Entry("LowRank", typeof(SimtGemm), nameof(SimtGemm.ReduceSplits), [], Elementwise, 0, ElementwiseTarget, SassClaims.None, autoGrouped: true));
        list.Add(Entry("LowRank", typeof(GaussianSketch), nameof(GaussianSketch.FillKernel), [], Elementwise, 0, ElementwiseTarget, SassClaims.None, autoGrouped: true));
        var activations = typeof(KernelCatalog).Assembly.GetTypes()
            .Where(t => t.IsValueType && typeof(IActivation).IsAssignableFrom(t)).OrderBy(t => t.Name, StringComparer.Ordinal).ToArray();
        foreach (var (mma, element, convert, word) in HalfKinds)
        {
            foreach (var activation in activations)
                list.Add(Entry("LowRank", typeof(StreamFfnKernel), nameof(StreamFfnKernel.Kernel), [element, word, activation],
                    4 * 16, 0, ElementwiseTarget, SassClaims.None));
            list.Add(Entry("LowRank", typeof(StreamMatmulKernel), nameof(StreamMatmulKernel.Kernel), [element, word, mma, convert],
                TileEngineConstants.Threads, StreamMatmulKernel.SharedBytes, 2, SassClaims.TensorCoreMainloop));
            // Two-stage path above the one-pass rank: both stages on the engine's wide tile (the second is Dense's).
            Add(list, EngineEntry("LowRank", typeof(WideTile), mma, typeof(FactorTransposeProducer),
                typeof(ScaledRankEpilogue<,,>).MakeGenericType(element, word, typeof(RankMajorRows))));
            Add(list, EngineEntry("LowRank", typeof(WideTile), mma, typeof(DenseWeightProducer), Store(element, convert)));
        }
    }

    // ---- helpers ----------------------------------------------------------------------------------------------------

    private static IEnumerable<(Type Element, Type Convert)> AllElements() =>
        [(typeof(float), typeof(F32)), (typeof(DeviceHalf), typeof(F16)), (typeof(BFloat16), typeof(BF16))];

    private static Type ConverterOf(Type element) => element == typeof(DeviceHalf) ? typeof(F16) : typeof(BF16);

    private static Type Store(Type element, Type convert) => typeof(StoreEpilogue<,>).MakeGenericType(element, convert);

    // TileEngine.Run is public: a producer of the user's own (an extension point, not listed) with the library's store
    // epilogues reaches the split-K reduction of every store the library offers, f32 included.
    private static void EngineExtensions(List<KernelEntry> list)
    {
        foreach (var (element, convert) in AllElements())
            Add(list, Entry("Engine", typeof(SplitKReduction), nameof(SplitKReduction.Kernel), [Store(element, convert)],
                Elementwise, 0, ElementwiseTarget, SassClaims.None));
    }

    // An engine product with its final epilogue, plus the split-K path a GPU may take: the same mainloop into f32
    // partials, and the reduction that applies the final epilogue.
    private static void EngineWithSplits(List<KernelEntry> list, string family, Type shape, Type mma, Type producer, Type final)
    {
        Add(list, EngineEntry(family, shape, mma, producer, final));
        Add(list, EngineEntry(family, shape, mma, producer, typeof(SplitKPartialEpilogue)));
        Add(list, Entry(family, typeof(SplitKReduction), nameof(SplitKReduction.Kernel), [final], Elementwise, 0, ElementwiseTarget, SassClaims.None));
    }

    // Families share specializations (LowRank's second stage is Dense's wide GEMM): the first family to list one owns it.
    private static void Add(List<KernelEntry> list, KernelEntry entry)
    {
        if (!list.Any(e => e.Name == entry.Name)) list.Add(entry);
    }

    private static KernelEntry EngineEntry(string family, Type shape, Type mma, Type producer, Type epilogue)
    {
        int shared = (int)typeof(TileShapes).GetMethod(nameof(TileShapes.SharedBytes))!.MakeGenericMethod(shape).Invoke(null, null)!
                     + WarpScratch.BytesFor(isCuda: true, TileEngineConstants.Warps);
        // The skinny and wide tiles serve decode-sized N where several groups per SM hide HBM latency; the large
        // tile is compute-shaped and needs two.
        int target = shape == typeof(LargeTile) ? 2 : 4;
        var claims = SassClaims.TensorCoreMainloop | (producer == typeof(TiledCslTileProducer) ? SassClaims.Load16 : 0);
        return Entry(family, typeof(TileEngine), nameof(TileEngine.Kernel), [shape, mma, producer, epilogue],
            TileEngineConstants.Threads, shared, target, claims);
    }

    private static KernelEntry Entry(string family, Type type, string name, Type[] typeArguments, int groupSize, int sharedBytes,
        int target, SassClaims claims, bool autoGrouped = false)
    {
        var method = type.GetMethod(name, BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static)
                     ?? throw new MissingMethodException(type.FullName, name);
        if (typeArguments.Length > 0) method = method.MakeGenericMethod(typeArguments);
        return new KernelEntry(family, method, autoGrouped, groupSize, sharedBytes, target, claims);
    }
}
