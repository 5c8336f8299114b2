using System.Reflection;
using System.Text.RegularExpressions;
using Kernels.Engine;
using Kernels.Optimizers;
using Kernels.Runtime;
using Kernels.Tensors;
using Xunit;

namespace Kernels.Tests.Assembler;

/// <summary>
/// The catalog is the whole set of kernels the library can launch: loads outside it are refused, no library file loads
/// a kernel another way, and every producer and epilogue the engine can be specialized with is listed.
/// </summary>
public class KernelCatalogTests
{
    private static readonly Assembly Library = typeof(KernelCatalog).Assembly;

    [Fact]
    public void AnUnlistedLibraryKernelIsRefused()
    {
        // A real library kernel in a specialization no public operation reaches: f32 parameters with f16 gradients.
        var unlisted = typeof(Optimizer8BitKernels).GetMethod(nameof(Optimizer8BitKernels.F32Step), BindingFlags.Static | BindingFlags.NonPublic)!
            .MakeGenericMethod(typeof(float), typeof(F32Parameter), typeof(ILGPU.Half), typeof(F16), typeof(AdamRule));
        Assert.Null(KernelCatalog.Find(unlisted));
        var e = Assert.Throws<InvalidOperationException>(() => KernelCatalog.Require(unlisted));
        Assert.Contains("F32Step<Single, F32Parameter, Half, F16, AdamRule>", e.Message);
        Assert.Contains("KernelCatalog.cs", e.Message);
        // The same through the loader, on a real accelerator: refused before ILGPU compiles anything.
        var load = typeof(KernelLoading).GetMethod(nameof(KernelLoading.Load))!.MakeGenericMethod(typeof(Delegate));
        var thrown = Assert.Throws<TargetInvocationException>(() => load.Invoke(null, [Harness.Devices.CpuSmall.Accelerator, unlisted, false]));
        Assert.IsType<InvalidOperationException>(thrown.InnerException);
    }

    [Fact]
    public void ListedKernelsAndExtensionPointsAreAllowed()
    {
        foreach (var entry in KernelCatalog.All) KernelCatalog.Require(entry.Method);
        // The engine with a producer written outside the library is a user's extension point, not the library's.
        var first = KernelCatalog.All.First(e => e.Method.DeclaringType == typeof(TileEngine));
        var args = first.Method.GetGenericArguments();
        args[2] = typeof(Kernels.Tests.Engine.ScatterTestProducer);
        KernelCatalog.Require(first.Method.GetGenericMethodDefinition().MakeGenericMethod(args));
    }

    [Fact]
    public void NoLibraryFileLoadsAKernelPastTheCatalog()
    {
        string root = RepositoryRoot();
        var direct = new Regex(@"\.(LoadKernel|LoadAutoGroupedKernel|LoadImplicitlyGroupedKernel|LoadStreamKernel)\s*[<(]");
        var offenders = Directory.EnumerateFiles(Path.Combine(root, "Kernels"), "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}") && Path.GetFileName(f) != "KernelLoading.cs")
            .SelectMany(f => File.ReadLines(f).Select((line, i) => (f, i, line)))
            .Where(x => direct.IsMatch(x.line) && !x.line.TrimStart().StartsWith("//", StringComparison.Ordinal))
            .Select(x => $"{Path.GetRelativePath(root, x.f)}:{x.i + 1}: {x.line.Trim()}").ToList();
        Assert.True(offenders.Count == 0, "kernels loaded without the catalog:\n" + string.Join("\n", offenders));
        // And the loader itself is used: the catalog is not a list nobody consults.
        int uses = Directory.EnumerateFiles(Path.Combine(root, "Kernels"), "*.cs", SearchOption.AllDirectories)
            .Sum(f => Regex.Matches(File.ReadAllText(f), @"LoadCatalog(AutoGrouped)?Kernel\s*[<(]").Count);
        Assert.True(uses >= 20, $"{uses} catalog loads");
    }

    [Fact]
    public void EveryProducerAndEpilogueOfTheLibraryIsListed()
    {
        // Listed: a generic argument of an entry, or a piece a listed kernel builds in its own body (StreamMatmul's
        // rank-tile stage runs the engine's mainloop inside that kernel).
        var listed = KernelCatalog.All
            .SelectMany(e => Flatten(e.Method.GetGenericArguments())
                .Concat(Flatten(e.Method.GetMethodBody()?.LocalVariables.Select(v => v.LocalType) ?? [])))
            .Select(t => t.IsGenericType ? t.GetGenericTypeDefinition() : t).ToHashSet();
        var pieces = Library.GetTypes().Where(t => t.IsValueType
            && (typeof(IWeightTileProducer).IsAssignableFrom(t) || typeof(ITileEpilogue).IsAssignableFrom(t)
                || t.GetInterfaces().Any(i => i == typeof(IWeightTileProducer) || i == typeof(ITileEpilogue))));
        var missing = pieces.Where(t => !listed.Contains(t)).Select(t => t.Name).ToList();
        Assert.True(missing.Count == 0, "not in any catalog entry: " + string.Join(", ", missing));
    }

    [Fact]
    public void NamesAreUniqueAndLaunchShapesStated()
    {
        Assert.Equal(KernelCatalog.All.Count, KernelCatalog.All.Select(e => e.Name).Distinct().Count());
        foreach (var e in KernelCatalog.All)
        {
            Assert.InRange(e.GroupSize, 32, 1024);
            Assert.InRange(e.DynamicSharedBytes, 0, 227 * 1024);
            Assert.InRange(e.TargetGroupsPerSM, 1, 32);
            Assert.Same(e, KernelCatalog.Find(e.Method));
        }
    }

    private static IEnumerable<Type> Flatten(IEnumerable<Type> types) =>
        types.SelectMany(t => t.IsGenericType ? Flatten(t.GetGenericArguments()).Prepend(t) : [t]);

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "kernels.sln"))) return dir.FullName;
        throw new InvalidOperationException("kernels.sln not found above " + AppContext.BaseDirectory);
    }
}
