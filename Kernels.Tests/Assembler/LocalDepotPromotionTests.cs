using Kernels.Cuda.Assembler;
using Kernels.Cuda.Ptx;
using Kernels.Runtime;
using Xunit;

namespace Kernels.Tests.Assembler;

/// <summary>
/// The rewrite between ILGPU and the module load: one-scalar <c>.local</c> depots, used only as whole-address loads and
/// stores of their own width, become registers; anything else stays in local memory. Hand-written PTX in ILGPU's shape.
/// </summary>
public class LocalDepotPromotionTests
{
    private const string Header = ".version 8.0\n.target sm_80\n.address_size 64\n\n";

    // ILGPU's shape for an inline-asm operand: a 4-byte depot written with a float immediate, an 8-byte depot holding
    // a pointer, each re-read before use.
    private const string Scalars = Header + """
.visible .entry Scale(
	.param .u64 out,
	.param .f32 x
)
{
	.local .align 4 .b8 __local_depot0[4];
	.local .align 8 .b8 __local_depot1[8];
	.reg .f32 %f<4>;
	.reg .b64 %rd<6>;

	ld.param.u64 %rd1, [out];
	ld.param.f32 %f1, [x];
	mov.u64 %rd2, __local_depot0;
	mov.u64 %rd3, __local_depot1;
	st.local.f32 [%rd2], 0f3F800000;
	st.local.u64 [%rd3], %rd1;
	ld.local.f32 %f2, [%rd2];
	add.f32 %f3, %f1, %f2;
	ld.local.u64 %rd4, [%rd3];
	cvta.to.global.u64 %rd5, %rd4;
	st.global.f32 [%rd5], %f3;
	ret;
}
""";

    [Fact]
    public void ScalarDepotsBecomeRegisters()
    {
        string ptx = LocalDepotPromotion.Apply(Scalars, out var report);
        Assert.Equal(2, report.Promoted);
        Assert.Equal(0, report.Kept);
        Assert.DoesNotContain("__local_depot", ptx);
        Assert.DoesNotContain(".local", ptx);
        Assert.Contains(".reg .b32\t%ldp0;", ptx);
        Assert.Contains(".reg .b64\t%ldp1;", ptx);
        // The float immediate keeps its bits as an integer immediate (a .b32 move takes no 0f form).
        Assert.Contains("mov.b32\t%ldp0, 0x3F800000;", ptx);
        Assert.Contains("mov.b32\t%f2, %ldp0;", ptx);
        Assert.Contains("mov.b64\t%rd4, %ldp1;", ptx);
        // Everything else is untouched.
        Assert.Contains("add.f32 %f3, %f1, %f2;", ptx);
        Assert.Contains("st.global.f32 [%rd5], %f3;", ptx);
    }

    [Fact]
    public void PromotedPtxAssemblesWithoutAStackFrame()
    {
        var tools = Harness.Assembler.RequireTools();
        string ptx = LocalDepotPromotion.Apply(Scalars, out _);
        foreach (var arch in new[] { "sm_80", "sm_90" })
        {
            var k = Ptxas.Assemble(tools, arch == "sm_80" ? ptx : ptx.Replace(".target sm_80", ".target sm_90"), arch);
            Assert.Equal(0, k.StackBytes);
            Assert.DoesNotContain(k.Sass.Instructions, i => i.IsLocal);
        }
    }

    [Theory]
    // An offset into the depot: it is an array, not a scalar.
    [InlineData("ld.local.u32 %r1, [%rd2+4];", 8)]
    // The address escapes into arithmetic or memory: someone else may read the slot.
    [InlineData("add.s64 %rd4, %rd2, 0;", 4)]
    [InlineData("st.global.u64 [%rd1], %rd2;", 4)]
    // A narrower access than the depot: part of the slot would be left stale.
    [InlineData("ld.local.u16 %rs1, [%rd2];", 4)]
    // A vector access.
    [InlineData("ld.local.v2.u32 {%r1, %r2}, [%rd2];", 8)]
    public void DepotsThatAreNotPlainScalarsStayInLocalMemory(string use, int size)
    {
        string ptx = Header + $$"""
.visible .entry Keep(.param .u64 out)
{
	.local .align 8 .b8 __local_depot0[{{size}}];
	.reg .b16 %rs<2>;
	.reg .b32 %r<3>;
	.reg .b64 %rd<5>;

	ld.param.u64 %rd1, [out];
	mov.u64 %rd2, __local_depot0;
	st.local.u{{size * 8}} [%rd2], 7;
	{{use}}
	ret;
}
""";
        string result = LocalDepotPromotion.Apply(ptx, out var report);
        Assert.Equal(0, report.Promoted);
        Assert.Equal(["__local_depot0"], report.KeptNames);
        Assert.Equal(ptx, result);
    }

    [Fact]
    public void RegistersAreScopedPerFunction()
    {
        // Two entries name their depot addresses %rd1 each: both are promoted, each declared in its own body.
        string Entry(int n) => $$"""
.visible .entry E{{n}}(.param .u64 out)
{
	.local .align 4 .b8 __local_depot{{n}}[4];
	.reg .b32 %r<3>;
	.reg .b64 %rd<4>;

	mov.u64 %rd1, __local_depot{{n}};
	st.local.u32 [%rd1], {{n + 5}};
	ld.local.u32 %r1, [%rd1];
	ld.param.u64 %rd2, [out];
	cvta.to.global.u64 %rd3, %rd2;
	st.global.u32 [%rd3], %r1;
	ret;
}

""";
        string ptx = LocalDepotPromotion.Apply(Header + Entry(0) + Entry(1), out var report);
        Assert.Equal(2, report.Promoted);
        int e1 = ptx.IndexOf(".entry E1", StringComparison.Ordinal);
        Assert.True(ptx.IndexOf("%ldp0;", StringComparison.Ordinal) is > 0 and var d0 && d0 < e1);
        Assert.True(ptx.IndexOf("%ldp1;", StringComparison.Ordinal) > e1);
        Assert.Contains("mov.b32\t%ldp1, 6;", ptx);
        if (CudaTools.Find() is { } tools) Assert.Equal(0, Ptxas.Assemble(tools, ptx, "sm_80").StackBytes);
    }

    [Fact]
    public void TheEngineLosesItsStackFrame()
    {
        // The measurement, kept as a fact: ILGPU's own PTX for the skinny dense engine runs through local
        // memory; the text devices load does not.
        var tools = Harness.Assembler.RequireTools();
        var entry = KernelCatalog.All.First(e => e.Family == "Dense" && e.Name.StartsWith("TileEngine.Kernel<SkinnyTile, F16Mma, DenseWeightProducer", StringComparison.Ordinal));
        var raw = Ptxas.Assemble(tools, PtxCompilation.RawText(entry, ILGPU.Runtime.Cuda.CudaArchitecture.SM_90), "sm_90");
        var loaded = Harness.Assembler.Analyze(entry, "sm_90");
        Assert.True(raw.StackBytes > 0 && raw.Sass.Instructions.Count(i => i.IsLocal) > 0, $"raw: {raw.StackBytes} B stack");
        Assert.Equal(0, loaded.StackBytes);
        Assert.Equal(0, loaded.LocalInstructions);
        Assert.True(loaded.Registers <= raw.Registers, $"{loaded.Registers} registers after, {raw.Registers} before");
        Assert.True(loaded.SassInstructions < raw.Sass.Instructions.Count);
    }
}
