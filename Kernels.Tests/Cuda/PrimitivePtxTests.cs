using ILGPU.Runtime.Cuda;
using Kernels.Tests.Harness;
using Xunit;

namespace Kernels.Tests.Cuda;

/// <summary>The real instructions appear in PTX compiled without a GPU, for sm_80 and sm_90.</summary>
public class PrimitivePtxTests
{
    public static TheoryData<CudaArchitecture> Architectures => new() { CudaArchitecture.SM_80, CudaArchitecture.SM_90 };

    [Theory]
    [MemberData(nameof(Architectures))]
    public void PrimitivesEmitTheirInstructions(CudaArchitecture arch)
    {
        var mma = Ptx.Compile(Ptx.Method(typeof(PrimitiveKernels), nameof(PrimitiveKernels.Mma)), arch);
        Assert.Contains("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32", mma);
        Assert.Contains("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32", mma);

        var ld = Ptx.Compile(Ptx.Method(typeof(PrimitiveKernels), nameof(PrimitiveKernels.LdMatrix)), arch);
        foreach (var v in new[] { "x1", "x2", "x4" })
        {
            Assert.Contains($"ldmatrix.sync.aligned.m8n8.{v}.shared.b16", ld);
            Assert.Contains($"ldmatrix.sync.aligned.m8n8.{v}.trans.shared.b16", ld);
        }
        Assert.Contains("__dyn_shared_alloca", ld);

        var copy = Ptx.Compile(Ptx.Method(typeof(PrimitiveKernels), nameof(PrimitiveKernels.Copy)), arch);
        Assert.Contains("cp.async.cg.shared.global", copy);
        Assert.Contains("cp.async.commit_group", copy);
        Assert.Contains("cp.async.wait_group 0", copy);
        Assert.Contains("ld.global.nc.v4.u32", copy);
    }
}
