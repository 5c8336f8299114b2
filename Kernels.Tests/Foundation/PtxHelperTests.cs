using ILGPU;
using ILGPU.Runtime.Cuda;
using Kernels.Tests.Harness;
using Xunit;

namespace Kernels.Tests.Foundation;

public class PtxHelperTests
{
#pragma warning disable CS0649 // filled by the kernel's vector load
    private struct Float4 { public float X, Y, Z, W; }
#pragma warning restore CS0649

    private static void CopyVec4(ArrayView<Float4> src, ArrayView<Float4> dst)
    {
        int i = Grid.GlobalIndex.X;
        if (i < src.Length) dst[i] = src[i];
    }

    [Fact]
    public void CompilesWithoutAGpuAndShowsVectorLoads()
    {
        var m = Ptx.Method(typeof(PtxHelperTests), nameof(CopyVec4));
        foreach (var arch in new[] { CudaArchitecture.SM_80, CudaArchitecture.SM_90 })
        {
            var ptx = Ptx.Compile(m, arch);
            Assert.Contains(".entry", ptx);
            Assert.Contains("ld.global.v4.f32", ptx);
            Assert.Contains("st.global.v4.f32", ptx);
        }
    }
}
