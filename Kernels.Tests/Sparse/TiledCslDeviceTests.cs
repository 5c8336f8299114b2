using Kernels.Sparse;
using Kernels.Tensors;
using Kernels.Tests.Harness;
using Xunit;

namespace Kernels.Tests.Sparse;

public class TiledCslDeviceTests
{
    [Theory]
    [InlineData(ElementType.Float16)]
    [InlineData(ElementType.BFloat16)]
    public void DeviceMatrixRoundTripsAndDecodes(ElementType valueType)
    {
        var seed = Seeded.Create();
        var device = Devices.CpuSmall;
        const int m = 200, k = 100;
        var w = SparseTestData.Weights(seed, m, k, 0.7, valueType);
        var host = valueType == ElementType.BFloat16
            ? TiledCslEncoder.Encode(SparseTestData.ToBFloat16(w), m, k)
            : TiledCslEncoder.Encode(SparseTestData.ToHalf(w), m, k);
        using var matrix = TiledCslMatrix.Upload(device, host);
        Assert.Equal((m, k, 256, 128, 4), (matrix.Rows, matrix.Columns, matrix.Shape.PaddedRows, matrix.Shape.PaddedColumns, matrix.Shape.TileCount));
        Assert.Equal(host.Shape.ByteLength, matrix.Shape.ByteLength);
        var (words, offsets) = matrix.ToFlashLlm();
        Compare.Exact<uint>(words, host.Words, "downloaded words", seed);
        Compare.Exact<int>(offsets, host.TileOffsets, "downloaded offsets", seed);

        using var dense = device.Allocate<ushort>(m, k);
        Poison.Fill(dense, (ushort)0x7E00);
        TiledCslDeviceDecoder.Decode(matrix, dense.Span);
        Compare.Exact<ushort>(dense.ToArray(), SparseTestData.Bits(w, valueType), "device decode", seed);
    }

    [Fact]
    public void AllZeroMatrixUploads()
    {
        using var matrix = TiledCslMatrix.Encode<System.Half>(Devices.CpuSmall, new System.Half[3 * 5], 3, 5);
        Assert.Equal(0, matrix.Shape.WordCount);
        var (words, offsets) = matrix.ToFlashLlm();
        Assert.Empty(words);
        Assert.Equal([0, 0, 0], offsets);
        using var dense = Devices.CpuSmall.Allocate<ILGPU.Half>(3, 5);
        Poison.Fill(dense);
        TiledCslDeviceDecoder.Decode(matrix, dense.Span);
        Assert.All(dense.ToArray(), h => Assert.Equal(0f, (float)h));
    }

    [Fact]
    public void CorruptArraysAreRejectedBeforeAnyUpload()
    {
        var e = Assert.Throws<ArgumentException>(() =>
            TiledCslMatrix.FromFlashLlm(Devices.CpuSmall, [TiledCsl.Word(0x3C00, 9000), 0, 0, 0], [0, 1, 1], 10, 10));
        Assert.Equal("words", e.ParamName);
    }

    [Fact]
    public void DecoderChecksItsDestination()
    {
        using var matrix = TiledCslMatrix.Encode<System.Half>(Devices.CpuSmall, new System.Half[3 * 5], 3, 5);
        using var wrongShape = Devices.CpuSmall.Allocate<ILGPU.Half>(5, 3);
        Assert.Throws<ArgumentException>(() => TiledCslDeviceDecoder.Decode(matrix, wrongShape.Span));
        using var wrongType = Devices.CpuSmall.Allocate<BFloat16>(3, 5);
        Assert.Throws<ArgumentException>(() => TiledCslDeviceDecoder.Decode(matrix, wrongType.Span));
    }
}
