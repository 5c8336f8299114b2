using ILGPU.Runtime.Cuda;
using Kernels.Optimizers;
using Kernels.Tensors;
using Kernels.Tests.Harness;
using Xunit;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Tests.Optimizers;

/// <summary>The step kernels compile to PTX for sm_80 and sm_90 with vector parameter/gradient accesses.</summary>
public class PtxTests
{
    [Fact]
    public void F32StepUses16ByteVectorLoadsAndStores()
    {
        var m = Ptx.Method(typeof(Optimizer8BitKernels), nameof(Optimizer8BitKernels.QuantizedStep),
            typeof(float), typeof(F32Parameter), typeof(float), typeof(F32), typeof(AdamWRule));
        foreach (var arch in new[] { CudaArchitecture.SM_80, CudaArchitecture.SM_90 })
        {
            var ptx = Ptx.Compile(m, arch);
            Assert.Contains("ld.global.v4.f32", ptx);   // p and g, 4 elements a load
            Assert.Contains("st.global.v4.f32", ptx);   // p
            Assert.Contains("ld.global.b32", ptx);      // 4 codes a load
            Assert.Contains("st.global.b32", ptx);      // 4 codes a store
            Assert.Contains("shfl.sync.bfly", ptx);     // block maxima: butterfly,
            Assert.Matches(@"(red|atom)\.max\.shared\.u32", ptx); // then one shared atomic per warp segment
            Assert.DoesNotContain("FusedMultiplyAdd", ptx);
        }
    }

    [Fact]
    public void SixteenBitStepsUse8ByteVectorAccessesAndF32StepsKeepStateInRegisters()
    {
        var bf16 = Ptx.Compile(Ptx.Method(typeof(Optimizer8BitKernels), nameof(Optimizer8BitKernels.QuantizedStep),
            typeof(BFloat16), typeof(BF16Parameter), typeof(float), typeof(F32), typeof(LionRule)));
        Assert.Contains("ld.global.v4.f32", bf16);  // f32 gradients
        Assert.Matches(@"ld\.global\.v(2\.u32|4\.u16|2\.b32|4\.b16)", bf16);
        var f16 = Ptx.Compile(Ptx.Method(typeof(Optimizer8BitKernels), nameof(Optimizer8BitKernels.QuantizedStep),
            typeof(DeviceHalf), typeof(F16Parameter), typeof(DeviceHalf), typeof(F16), typeof(MomentumRule)));
        Assert.Matches(@"st\.global\.v(2\.u32|4\.u16|2\.b32|4\.b16)", f16);
        // The f32-state step (tensors under 4096 elements) is a grid-stride loop of coalesced scalar accesses; every
        // rule keeps its state in registers.
        foreach (var rule in new[] { typeof(AdamRule), typeof(RMSpropRule), typeof(AdagradRule) })
        {
            var ptx = Ptx.Compile(Ptx.Method(typeof(Optimizer8BitKernels), nameof(Optimizer8BitKernels.F32Step),
                typeof(float), typeof(F32Parameter), typeof(float), typeof(F32), rule));
            Assert.Contains("ld.global.f32", ptx);
            Assert.Contains("st.global.f32", ptx);
            Assert.DoesNotContain(".local", ptx);
        }
    }
}
