using ILGPU.Runtime.Cuda;
using Kernels.Engine;
using Kernels.Tensors;
using Kernels.Tests.Harness;
using Xunit;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Tests.Dense;

/// <summary>What the fast kernels must contain, checked on PTX compiled without a GPU, for sm_80 and sm_90.</summary>
public class DensePtxTests
{
    public static TheoryData<CudaArchitecture> Architectures => new() { CudaArchitecture.SM_80, CudaArchitecture.SM_90 };

    [Theory]
    [MemberData(nameof(Architectures))]
    public void GemmUsesTensorCoresLdmatrixAndCpAsync(CudaArchitecture arch)
    {
        var kernel = typeof(TileEngine).GetMethod(nameof(TileEngine.Kernel))!.MakeGenericMethod(
            typeof(SkinnyTile), typeof(F16Mma), typeof(DenseWeightProducer), typeof(StoreEpilogue<DeviceHalf, F16>));
        var ptx = Ptx.Compile(kernel, arch);
        Assert.Contains("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32", ptx);
        Assert.Contains("ldmatrix.sync.aligned.m8n8.x4.shared.b16", ptx);
        Assert.Contains("cp.async.cg.shared.global", ptx);
        Assert.Contains("cp.async.commit_group", ptx);
        Assert.Contains("cp.async.wait_group", ptx);
    }

    [Theory]
    [MemberData(nameof(Architectures))]
    public void BFloat16GemmAndSplitKReductionInSplitOrder(CudaArchitecture arch)
    {
        var kernel = typeof(TileEngine).GetMethod(nameof(TileEngine.Kernel))!.MakeGenericMethod(
            typeof(WideTile), typeof(BF16Mma), typeof(DenseWeightProducer), typeof(SplitKPartialEpilogue));
        var ptx = Ptx.Compile(kernel, arch);
        Assert.Contains("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32", ptx);

        var reduce = typeof(SplitKReduction).GetMethod(nameof(SplitKReduction.Kernel))!.MakeGenericMethod(
            typeof(StoreEpilogue<BFloat16, BF16>));
        // The reduction adds the partial planes in split order with plain loads: no atomics (run-to-run identical
        // results), nothing in local memory.
        var sum = Ptx.Compile(reduce, arch);
        Assert.Contains("ld.global.f32", sum);
        Assert.DoesNotMatch(@"\b(atom|red)\.", sum);
        Assert.DoesNotContain(".local", sum);
    }

    [Fact]
    public void LargeTileKeepsItsSixteenFragmentsInRegisters()
    {
        var large = Ptx.Compile(typeof(TileEngine).GetMethod(nameof(TileEngine.Kernel))!.MakeGenericMethod(
            typeof(LargeTile), typeof(F16Mma), typeof(DenseWeightProducer), typeof(StoreEpilogue<DeviceHalf, F16>)));
        // 4×4 fragments per warp × the two k16 steps of IWarpTile.Step32, unrolled by hand, and only the other shapes'
        // branch folded away; in the PTX a device loads nothing is in .local: not the accumulators, not the inline-asm
        // operands (LocalDepotPromotion).
        Assert.Equal(32, System.Text.RegularExpressions.Regex.Matches(large, "mma.sync.aligned").Count);
        Assert.DoesNotContain(".local", large);
    }

    [Theory]
    [MemberData(nameof(Architectures))]
    public void GemvStreamsWeightsWith16ByteLoads(CudaArchitecture arch)
    {
        var kernel = Ptx.Method(typeof(Kernels.Dense.Dense).Assembly.GetType("Kernels.Dense.GemvKernel")!, "Kernel",
            typeof(DeviceHalf), typeof(F16), typeof(F16Mma));
        var ptx = Ptx.Compile(kernel, arch);
        Assert.Contains("ld.global.nc.v4.u32", ptx);
        Assert.Contains("ld.global.v4.b32", ptx); // x chunks: ILGPU's own 16-byte load of UInt4
        Assert.Contains("shfl.sync", ptx);
    }
}
