using Kernels.Quantization;
using Kernels.SpQR;
using Kernels.Tensors;
using Kernels.Tests.Harness;
using Kernels.Tests.SpQR;
using Xunit;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Tests.Reliability;

/// <summary>
/// Destinations that share memory with an input or with each other are refused (ArgumentException naming the
/// destination, nothing written); buffers that only touch end to end are accepted and give the reference result.
/// </summary>
public class AliasingTests
{
    [Fact]
    public void DenseGemvRefusesYOverX()
    {
        var device = Devices.CpuWarp32;
        using var w = device.Allocate<DeviceHalf>(16, 16);
        var guard = new WriteGuard();
        using var x = guard.Watch(device.Allocate<DeviceHalf>(16), "x");
        guard.Rejects<ArgumentException>(() => Kernels.Dense.Dense.Gemv<DeviceHalf>(w, x.ReadOnlySpan, x.Span), "y", "Dense.Gemv(w, x, x)");
    }

    [Fact]
    public void SpqrGemvAndGemmRefuseYOverX()
    {
        var device = Devices.CpuWarp32;
        var (u, _) = SpqrTestData.Integer(32, 32, Seeded.Create());
        using var matrix = new SpqrMatrix(device, SpqrPacking.Pack(u));
        var guard = new WriteGuard();
        using var x = guard.Watch(device.Allocate<DeviceHalf>(32), "x");
        guard.Rejects<ArgumentException>(() => Spqr.Gemv(matrix, x.ReadOnlySpan, x.Span), "y", "Spqr.Gemv(m, x, x)");
        using var xs = guard.Watch(device.Allocate<DeviceHalf>(2, 32), "xs");
        guard.Rejects<ArgumentException>(() => Spqr.Gemm(matrix, xs.ReadOnlySpan, xs.Span), "y", "Spqr.Gemm(m, x, x)");
    }

    [Fact]
    public void QuantizeRefusesAbsmaxOverInput()
    {
        var device = Devices.CpuSmall;
        const int n = 256, block = 64;
        var guard = new WriteGuard();
        using var buffer = guard.Watch(device.Allocate<float>(n + 4), "input and absmax");
        using var codes = guard.Watch(device.Allocate<byte>(n), "codes");
        var input = buffer.ReadOnlySpan.Slice(0..n);
        guard.Rejects<ArgumentException>(() => Blockwise.Quantize(input, CodeBook.DynamicSigned, block, codes, buffer.Span.Slice((n - 2)..(n + 2))),
            "absmax", "absmax overlapping the end of input");
        using var bytes = guard.Watch(device.Allocate<byte>(n + 16), "codes and absmax");
        using var floats = device.Upload<float>(new float[n], n);
        guard.Rejects<ArgumentException>(() => Blockwise.Quantize(floats.ReadOnlySpan, CodeBook.DynamicSigned, block, bytes.Span.Slice(0..n),
            floats.Span.Slice(0..4)), "absmax", "absmax overlapping input");
    }

    [Fact]
    public void DequantizeRefusesOutputOverAbsmax()
    {
        var device = Devices.CpuSmall;
        const int n = 128, block = 64;
        var seed = Seeded.Create();
        var values = seed.Normal(n);
        var (codesHost, absmaxHost) = BlockwiseReference.Quantize<float>(values, CodeBook.DynamicSigned, block);
        using var codes = device.Upload<byte>(codesHost, n);
        var guard = new WriteGuard();
        using var shared = guard.Watch(device.Allocate<float>(n + 2), "output and absmax");
        guard.Rejects<ArgumentException>(() => Blockwise.Dequantize(codes.ReadOnlySpan, shared.ReadOnlySpan.Slice(0..2), CodeBook.DynamicSigned, block,
            shared.Span.Slice(1..(n + 1))), "output", "output overlapping absmax");
    }

    [Fact]
    public void AdjacentBuffersAreAcceptedAndCorrect()
    {
        var device = Devices.CpuSmall;
        const int n = 256, block = 64, blocks = n / block;
        var seed = Seeded.Create();
        var values = seed.Normal(n);
        // input and absmax end to end in one allocation: touching is not overlapping.
        using var buffer = device.Upload<float>([.. values, .. new float[blocks]], n + blocks);
        using var codes = device.Allocate<byte>(n);
        Blockwise.Quantize(buffer.ReadOnlySpan.Slice(0..n), CodeBook.DynamicSigned, block, codes, buffer.Span.Slice(n..(n + blocks)));
        var (expectedCodes, expectedAbsmax) = BlockwiseReference.Quantize<float>(values, CodeBook.DynamicSigned, block);
        Compare.Exact<byte>(codes.ToArray(), expectedCodes, "codes", seed);
        Compare.Exact<float>(buffer.ToArray().AsSpan(n).ToArray(), expectedAbsmax, "absmax", seed);
    }
}
