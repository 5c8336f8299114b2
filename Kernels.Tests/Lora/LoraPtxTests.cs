using ILGPU.Runtime.Cuda;
using Kernels.Engine;
using Kernels.Lora;
using Kernels.Tensors;
using Kernels.Tests.Harness;
using Xunit;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Tests.Lora;

/// <summary>The fused LoRA kernels compile to PTX without a GPU, and the GEMM-shaped ones run on tensor cores.</summary>
public class LoraPtxTests
{
    public static TheoryData<CudaArchitecture> Architectures => new() { CudaArchitecture.SM_80, CudaArchitecture.SM_90 };

    private static string EnginePtx(CudaArchitecture arch, Type shape, Type mma, Type producer, Type epilogue) =>
        Ptx.Compile(typeof(TileEngine).GetMethod(nameof(TileEngine.Kernel))!.MakeGenericMethod(shape, mma, producer, epilogue), arch);

    [Theory]
    [MemberData(nameof(Architectures))]
    public void FusedForwardAndDxUseMmaSync(CudaArchitecture arch)
    {
        var forward = EnginePtx(arch, typeof(WideTile), typeof(F16Mma), typeof(DenseWeightProducer),
            typeof(LoraExpandEpilogue<DeviceHalf, F16, SingleLoraAdapter>));
        Assert.Contains("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32", forward);
        Assert.Contains("cp.async.cg.shared.global", forward);
        var multi = EnginePtx(arch, typeof(SkinnyTile), typeof(BF16Mma), typeof(DenseWeightProducer),
            typeof(LoraExpandEpilogue<BFloat16, BF16, PooledLoraAdapters>));
        Assert.Contains("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32", multi);
        var dx = EnginePtx(arch, typeof(WideTile), typeof(F16Mma), typeof(LoraTransposedWeightProducer),
            typeof(LoraDxEpilogue<DeviceHalf, F16>));
        Assert.Contains("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32", dx);
        var qlora = EnginePtx(arch, typeof(WideTile), typeof(F16Mma), typeof(LoraQuantizedWeightProducer<F16Mma>),
            typeof(LoraExpandEpilogue<DeviceHalf, F16, SingleLoraAdapter>));
        Assert.Contains("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32", qlora);
        Assert.DoesNotContain("FusedMultiplyAdd", forward + multi + dx + qlora);
    }

    [Theory]
    [MemberData(nameof(Architectures))]
    public void RankSpaceKernelsAreDeterministicSharedMemoryReductions(CudaArchitecture arch)
    {
        var row = Ptx.Compile(Ptx.Method(typeof(LoraRowProduct), nameof(LoraRowProduct.Kernel), typeof(DeviceHalf), typeof(F16), typeof(SingleLoraAdapter)), arch);
        var column = Ptx.Compile(Ptx.Method(typeof(LoraColumnProduct), nameof(LoraColumnProduct.Kernel), typeof(BFloat16), typeof(BF16)), arch);
        var bgmv = Ptx.Compile(Ptx.Method(typeof(LoraBgmv), nameof(LoraBgmv.Kernel), typeof(DeviceHalf), typeof(F16)), arch);
        // Each stages its operands in shared memory and adds partial sums in a fixed order: no atomics anywhere (the
        // results are bit-identical run to run), no fused multiply-add (the reference rounds each product), nothing in
        // local memory.
        foreach (var ptx in new[] { row, column, bgmv })
        {
            Assert.Contains("ld.shared", ptx);
            Assert.Contains("bar.sync", ptx);
            Assert.DoesNotMatch(@"\b(atom|red)\.", ptx);
            Assert.DoesNotContain("FusedMultiplyAdd", ptx);
            Assert.DoesNotContain(".local", ptx);
        }
    }
}
