using Kernels.Runtime;
using Kernels.Tests.Harness;
using Xunit;

namespace Kernels.Tests.Assembler;

/// <summary>
/// Every catalog kernel, as a CUDA device loads it, assembled by NVIDIA's ptxas for sm_80 and sm_90: accepted, no
/// stack frame, no spills, no LDL/STL, its own occupancy target on an H200 met, and the instructions its design claims
/// (HMMA.16816.F32 with LDSM in the mainloop, LDGSTS.E.BYPASS.128, LDG.E.128) present in the SASS.
/// </summary>
public class CatalogSassTests
{
    public static TheoryData<string, string> Kernels()
    {
        var data = new TheoryData<string, string>();
        foreach (var entry in KernelCatalog.All)
            foreach (var arch in Harness.Assembler.Architectures)
                data.Add(entry.Name, arch);
        return data;
    }

    [Theory]
    [MemberData(nameof(Kernels))]
    public void AssemblesWithinItsBudget(string kernel, string architecture)
    {
        var a = Harness.Assembler.Analyze(Harness.Assembler.Entry(kernel), architecture);
        Assert.True(a.Problems.Count == 0, $"{kernel} on {architecture}: {string.Join("; ", a.Problems)}");
        // The rules behind Problems, stated once more as the facts the issue asks for.
        Assert.Equal(0, a.StackBytes);
        Assert.Equal(0, a.SpillStoreBytes + a.SpillLoadBytes);
        Assert.Equal(0, a.LocalInstructions);
        Assert.True(a.Occupancy.GroupsPerSM >= a.Entry.TargetGroupsPerSM);
    }

    [Fact]
    public void TensorCoreKernelsRunHmmaAndLdsmInTheirMainloop()
    {
        var tensorCore = KernelCatalog.All.Where(e => e.UsesTensorCores).ToList();
        Assert.True(tensorCore.Count >= 50, $"only {tensorCore.Count} tensor-core kernels in the catalog");
        // The engine with each of its producers at each tile shape (the first specialization of each), and every other tensor-core loop.
        var sample = tensorCore.Where(e => e.Method.DeclaringType == typeof(global::Kernels.Engine.TileEngine))
            .GroupBy(e => (Producer: e.Method.GetGenericArguments()[2].Name, Shape: e.Method.GetGenericArguments()[0].Name)).Select(g => g.First())
            .Concat(tensorCore.Where(e => e.Method.DeclaringType != typeof(global::Kernels.Engine.TileEngine))).ToList();
        Assert.True(sample.Count >= 5, $"{sample.Count} producers");
        foreach (var entry in sample)
        {
            var a = Harness.Assembler.Analyze(entry, "sm_90");
            var loop = Assert.IsType<MainLoopFigures>(a.MainLoop);
            Assert.True(loop.Hmma >= 4, $"{entry.Name}: {loop.Hmma} HMMA per mainloop iteration");
            Assert.True(a.Ldsm > 0, $"{entry.Name}: no LDSM");
            if (entry.Claims.HasFlag(SassClaims.CpAsync16)) Assert.True(a.CpAsync16 > 0, $"{entry.Name}: no LDGSTS.E.BYPASS.128");
            // Issue 15's static targets for the engine's innermost mma loop on sm_90: ≤ 3 SASS instructions per HMMA for
            // the large tile, ≤ 6 for the skinny and wide tiles (measured 1.8 and 3.4–4.0 with the two-trip loop; 5 and
            // 11 before it, 50–61 with local-memory operands). Other tensor-core loops: no local-memory operand moves.
            bool engine = entry.Method.DeclaringType == typeof(global::Kernels.Engine.TileEngine);
            bool large = engine && entry.Method.GetGenericArguments()[0].Name.StartsWith("Large", StringComparison.Ordinal);
            double bound = large ? 3 : engine ? 6 : 20;
            Assert.True(loop.PerHmma <= bound, $"{entry.Name}: {loop.PerHmma:F1} SASS instructions per HMMA (bound {bound})");
        }
    }
}
