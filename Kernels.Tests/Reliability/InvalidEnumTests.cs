using Kernels.LowRank;
using Kernels.Lora;
using Kernels.Quantization;
using Kernels.Runtime;
using Kernels.Sparse;
using Kernels.SpQR;
using Kernels.Tensors;
using Kernels.Tests.Harness;
using Kernels.Tests.Lora;
using Kernels.Tests.SpQR;
using Xunit;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Tests.Reliability;

/// <summary>Enum values outside the declared members are refused where they enter, naming the parameter, instead of being read as some default.</summary>
public class InvalidEnumTests
{
    [Fact]
    public void DeviceKind() =>
        Assert.Equal("kind", Assert.Throws<ArgumentOutOfRangeException>(() => ComputeDevice.Get((DeviceKind)9)).ParamName);

    [Fact]
    public void ElementTypeOfAQuantizedTensor()
    {
        var device = Devices.CpuSmall;
        using var codes = device.Allocate<byte>(64);
        using var absmax = device.Allocate<float>(1);
        Assert.Equal("elementType", Assert.Throws<ArgumentOutOfRangeException>(
            () => new BlockwiseQuantized(CodeBook.DynamicSigned, 64, 64, (ElementType)7, codes, absmax)).ParamName);
    }

    [Fact]
    public void ValueTypeOfTiledCsl()
    {
        var (words, offsets) = TiledCslEncoder.Encode(new System.Half[128 * 64], 128, 64).ToFlashLlm();
        Assert.Equal("valueType", Assert.Throws<ArgumentException>(
            () => TiledCslMatrix.FromFlashLlm(Devices.CpuSmall, words, offsets, 128, 64, (ElementType)9)).ParamName);
        Assert.Equal("valueType", Assert.Throws<ArgumentException>(
            () => TiledCslArrays.FromFlashLlm(words, offsets, 128, 64, ElementType.Float32)).ParamName);
    }

    [Fact]
    public void FfnActivation()
    {
        var device = Devices.CpuWarp32;
        using var x = device.Allocate<DeviceHalf>(2, 4);
        using var v1 = device.Allocate<DeviceHalf>(4, 8);
        using var b1 = device.Allocate<DeviceHalf>(8);
        using var u2 = device.Allocate<DeviceHalf>(8, 2);
        using var v2 = device.Allocate<DeviceHalf>(2, 3);
        using var y = device.Allocate<DeviceHalf>(2, 3);
        Assert.Equal("activation", Assert.Throws<ArgumentOutOfRangeException>(
            () => LowRankProduct.StreamFfn<DeviceHalf>(x, v1, b1, u2, v2, default, (Kernels.LowRank.FfnActivation)7, y)).ParamName);
        Assert.Equal("activation", Assert.Throws<ArgumentOutOfRangeException>(
            () => LowRankReference.StreamFfn(new float[8], new float[32], new float[8], new float[16], new float[6], [],
                (Kernels.LowRank.FfnActivation)7, 2, 4, 8, 2, 3)).ParamName);
    }

    [Fact]
    public void SpqrSparseLayout()
    {
        var (u, _) = SpqrTestData.Integer(20, 30, Seeded.Create());
        Assert.Equal("layout", Assert.Throws<ArgumentOutOfRangeException>(() => SpqrPacking.Pack(u, (Kernels.SpQR.SpqrSparseLayout)9)).ParamName);
        var p = SpqrPacking.Pack(u);
        Assert.Equal("layout", Assert.Throws<ArgumentOutOfRangeException>(() => new SpqrPacked(p.Rows, p.Columns, p.DenseWeights, p.RowOffsets,
            p.ColVals, p.InPerm, (Kernels.SpQR.SpqrSparseLayout)9)).ParamName);
    }

    [Fact]
    public void AnF32AdapterSetServesBgmvOnlyAndTheTensorCorePathSaysSo()
    {
        var device = Devices.CpuWarp32;
        var (typed, _) = LoraTestData.Adapters<float>(Seeded.Create(), 8, 5, 2);
        using var adapters = LoraAdapterSet<float>.Create(device, 8, 5, typed);
        using var batch = LoraBatch.FromTokens(device, [0, 0]);
        using var x = device.Allocate<float>(2, 8);
        using var w = device.Allocate<float>(5, 8);
        using var s = device.Allocate<float>(2, adapters.MaxRank);
        using var y = device.Allocate<float>(2, 5);
        Assert.Equal("x", Assert.Throws<ArgumentException>(
            () => Kernels.Lora.Lora.SegmentedForward<float>(x, w, null, adapters, batch, default, s, y)).ParamName);
    }
}
