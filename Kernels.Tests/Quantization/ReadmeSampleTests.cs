using Kernels.Quantization;
using Kernels.Runtime;
using Kernels.Tensors;
using Kernels.Tests.Harness;
using Xunit;

namespace Kernels.Tests.Quantization;

public class ReadmeSampleTests
{
    // The quantization lines of README.md "The API in a dozen lines", verbatim apart from the device and the data.
    [Fact]
    public void ReadmeSnippetCompilesAndRoundTrips()
    {
        var seed = Seeded.Create();
        nint rows = 8, cols = 100;
        float[] weights = seed.Normal(rows * cols);
        ComputeDevice device = Devices.CpuSmall;
        using var x = device.Upload<float>(weights, rows, cols);
        using var codes = device.Allocate<byte>(rows * cols);
        using var absmax = device.Allocate<float>((nint)Blockwise.BlockCount(rows * cols, 256));
        Blockwise.Quantize(x, CodeBook.DynamicSigned, 256, codes, absmax);
        Blockwise.Dequantize(codes, absmax, CodeBook.DynamicSigned, 256, x);
        device.Synchronize();
        float[] back = x.ToArray();
        var expected = BlockwiseReference.Quantize(weights, CodeBook.DynamicSigned, 256);

        Compare.Exact<byte>(codes.ToArray(), expected.Codes, "README codes", seed);
        Compare.Exact<float>(back, BlockwiseReference.Dequantize(expected.Codes, expected.Absmax, CodeBook.DynamicSigned, 256, weights.Length), "README round trip", seed);
    }
}
