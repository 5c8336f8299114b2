using ILGPU.Runtime.Cuda;
using Kernels.Quantization;
using Kernels.Tensors;
using Kernels.Tests.Harness;
using Xunit;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Tests.Quantization;

public class BlockwisePtxTests
{
    public static TheoryData<string, string> Kernels() => new()
    {
        { "Quantize", "f32" }, { "Quantize", "f16" }, { "Quantize", "bf16" },
        { "Dequantize", "f32" }, { "Dequantize", "f16" }, { "Dequantize", "bf16" },
    };

    private static Type[] Args(string type) => type switch
    {
        "f32" => [typeof(float), typeof(F32Lanes)],
        "f16" => [typeof(DeviceHalf), typeof(F16Lanes)],
        _ => [typeof(BFloat16), typeof(BF16Lanes)],
    };

    [Theory]
    [MemberData(nameof(Kernels))]
    public void KernelsUse16ByteLoadsAndStores(string kernel, string type)
    {
        var m = Ptx.Method(typeof(BlockwiseKernels), kernel, Args(type));
        foreach (var arch in new[] { CudaArchitecture.SM_80, CudaArchitecture.SM_90 })
        {
            var ptx = Ptx.Compile(m, arch);
            Assert.Matches(@"ld\.global(\.nc)?\.v4\.(b32|u32|f32)", ptx);
            Assert.Matches(@"st\.global\.v4\.(b32|u32|f32)", ptx);
            Assert.DoesNotContain("FusedMultiplyAdd", ptx);
            Assert.DoesNotContain("div.approx", ptx); // the reciprocal must be the IEEE one the reference computes
            Assert.DoesNotContain(".local", ptx);   // no spilled arrays
        }
    }

    [Fact]
    public void CanonicalSumHasAFixedOrder()
    {
        // The sum must not depend on scheduling: a fixed tree through shared memory, no atomics, IEEE division.
        var ptx = Ptx.Compile(Ptx.Method(typeof(BlockwiseKernels), nameof(BlockwiseKernels.CanonicalSumPass)));
        Assert.Contains("bar.sync", ptx);
        Assert.DoesNotMatch(@"\b(atom|red)\.", ptx);
        Assert.DoesNotContain("div.approx", ptx);
    }
}
