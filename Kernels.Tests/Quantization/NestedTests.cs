using ILGPU;
using Kernels.Quantization;
using Kernels.Tensors;
using Kernels.Tests.Harness;
using Xunit;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Tests.Quantization;

public class NestedTests
{
    private static Kernels.Runtime.ComputeDevice Device => Devices.CpuSmall;

    [Theory]
    [InlineData(1)]
    [InlineData(4096)]
    [InlineData(4097)]
    [InlineData(9000)] // three partials in the first pass, then a second pass
    public void CanonicalMeanEqualsReferenceBitForBit(int n)
    {
        var seed = Seeded.Create();
        var x = seed.Uniform(n, 0f, 3f);
        using var dx = Device.Upload<float>(x);
        using var mean = Device.Allocate<float>(1);
        var scratch = new List<DeviceTensor<float>>();
        Blockwise.LaunchCanonicalMean(dx.Span.View, n, mean.Span.View, Device, scratch);
        Device.Synchronize();
        foreach (var s in scratch) s.Dispose();
        float expected = BlockwiseReference.CanonicalSum(x, n);
        Assert.Equal(BitConverter.SingleToInt32Bits(expected), BitConverter.SingleToInt32Bits(mean.ToArray()[0]));
        Assert.True(Math.Abs(expected - x.Average(v => (double)v)) < 1e-5, $"mean {expected} {seed.Tag}");
    }

    [Theory]
    [InlineData("nf4", 64, "f32", 64 * 300 + 7)]
    [InlineData("dynamic-signed", 32, "bf16", 32 * 600 + 1)]
    [InlineData("fp4", 64, "f16", 64 * 200 + 3)]
    public void NestedQuantizationMatchesReferenceAndBounds(string bookName, int blockSize, string type, int n)
    {
        var map = CodeBook.All.Single(b => b.Name == bookName);
        switch (type)
        {
            case "f32": Run<float>(map, blockSize, n); break;
            case "f16": Run<DeviceHalf>(map, blockSize, n); break;
            default: Run<BFloat16>(map, blockSize, n); break;
        }
    }

    private static void Run<T>(CodeBook map, int blockSize, int n) where T : unmanaged
    {
        var seed = Seeded.Create();
        var xf = seed.Normal(n);
        var host = ElementTypes.FromFloat<T>(xf);
        using var x = Device.Upload<T>(host);
        using var q = BlockwiseQuantized.Quantize<T>(x, map, blockSize, nested: true);
        Assert.True(q.IsNested);
        Assert.Null(q.Absmax);

        var (refCodes, refAbsmax) = BlockwiseReference.Quantize<T>(host, map, blockSize);
        var (nCodes, nAbsmax, offset) = BlockwiseReference.QuantizeNested(refAbsmax);
        Compare.Exact<byte>(q.Codes.ToArray(), refCodes, "first-level codes", seed);
        Compare.Exact<byte>(q.NestedCodes!.ToArray(), nCodes, "nested codes", seed);
        Compare.Exact<float>(q.NestedAbsmax!.ToArray(), nAbsmax, "nested absmax", seed);
        Assert.Equal(offset, q.NestedOffset!.ToArray()[0]);

        // Dequantize: the device may fuse value·absmax2 + offset into one FMA, so compare within f32 rounding.
        var absmax = BlockwiseReference.DequantizeNested(nCodes, nAbsmax, offset);
        var expected = BlockwiseReference.Dequantize(refCodes, absmax, map, blockSize, n);
        using var y = Device.Allocate<float>(n);
        Poison.Fill(y);
        q.Dequantize<float>(y);
        var got = y.ToArray();
        Poison.AssertAllWritten<float>(got, "nested dequantize", seed);
        Compare.Close(got, expected, Compare.F32, "nested dequantize", seed);

        // Second-level error is at most half the signed map's largest gap (0.0140625 / 2, or the 0.703% asymmetry at −1)
        // times the nested block's absmax.
        for (int b = 0; b < absmax.Length; b++)
        {
            double bound = 0.00704 * nAbsmax[b / BlockwiseQuantized.NestedBlockSize] + 1e-6;
            Assert.True(Math.Abs(absmax[b] - refAbsmax[b]) <= bound, $"absmax[{b}] {absmax[b]} vs {refAbsmax[b]} (bound {bound}) {seed.Tag}");
        }
        // bitsandbytes' compressed-statistics bound (docs/bitsandbytes.md §4): mean abs < 0.11 for 4-bit.
        double meanAbs = 0;
        var xr = Compare.ToFloat<T>(host);
        for (int i = 0; i < n; i++) meanAbs += Math.Abs(got[i] - xr[i]);
        meanAbs /= n;
        Assert.True(meanAbs < (map.Bits == 4 ? 0.11 : 0.011), $"{map} nested mean abs {meanAbs} {seed.Tag}");
        Assert.True(q.BitsPerElement < map.Bits + 32.0 / blockSize, $"nested must store less than fp32 absmax: {q.BitsPerElement}");
    }

    [Fact]
    public void PlainFormatRoundTripsAndValidates()
    {
        var seed = Seeded.Create();
        int n = 1000;
        var xf = seed.Normal(n);
        using var x = Device.Upload<float>(xf);
        using var q = BlockwiseQuantized.Quantize<float>(x, CodeBook.DynamicSigned, 256);
        Assert.False(q.IsNested);
        Assert.Equal(8 + 32.0 * 4 / 1000, q.BitsPerElement, 6);
        using var y = Device.Allocate<float>(n);
        q.Dequantize<float>(y);
        var (c, a) = BlockwiseReference.Quantize<float>(xf, CodeBook.DynamicSigned, 256);
        Compare.Exact<float>(y.ToArray(), BlockwiseReference.Dequantize(c, a, CodeBook.DynamicSigned, 256, n), "format dequantize", seed);
        using var wrong = Device.Allocate<float>(n - 1);
        Assert.Throws<ArgumentException>(() => q.Dequantize<float>(wrong));

        using var codes = Device.Allocate<byte>(n);
        using var shortAbsmax = Device.Allocate<float>(3);
        Assert.Throws<ArgumentException>(() => new BlockwiseQuantized(CodeBook.DynamicSigned, 256, n, ElementType.Float32, codes, shortAbsmax));
        Assert.Throws<ArgumentException>(() => new BlockwiseQuantized(CodeBook.NF4, 256, n, ElementType.Float32, codes, shortAbsmax));
        Assert.Throws<ArgumentOutOfRangeException>(() => new BlockwiseQuantized(CodeBook.DynamicSigned, 100, n, ElementType.Float32, codes, shortAbsmax));
    }
}
