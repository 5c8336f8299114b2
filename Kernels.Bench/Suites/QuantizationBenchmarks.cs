using BenchmarkDotNet.Attributes;
using Kernels.Quantization;
using Kernels.Runtime;
using Kernels.Tensors;

namespace Kernels.Bench.Suites;

/// <summary>
/// Block-wise quantize/dequantize on the default device (2^26 f32 elements on a GPU, 2^14 on the CPU accelerator),
/// each call followed by a device synchronize, plus the CPU reference for scale. Run with
/// <c>dotnet run --project Kernels.Bench -c Release -- bdn --filter *Quantization*</c>.
/// </summary>
public class QuantizationBenchmarks
{
    private ComputeDevice device = null!;
    private float[] host = [];
    private DeviceTensor<float> x = null!, y = null!, absmax = null!, absmax4 = null!;
    private DeviceTensor<byte> codes = null!, codes4 = null!;

    /// <summary>Block size of the 8-bit rows.</summary>
    [Params(256, 4096)]
    public int BlockSize { get; set; }

    /// <summary>Allocates and fills the buffers.</summary>
    [GlobalSetup]
    public void Setup()
    {
        device = ComputeDevice.Default;
        long n = device.IsCuda ? 1L << 26 : 1L << 14;
        var random = new Random(7);
        host = new float[n];
        for (long i = 0; i < n; i++) host[i] = (float)(random.NextDouble() * 2 - 1);
        x = device.Upload<float>(host);
        y = device.Allocate<float>((nint)n);
        codes = device.Allocate<byte>((nint)n);
        absmax = device.Allocate<float>((nint)Blockwise.BlockCount(n, BlockSize));
        codes4 = device.Allocate<byte>((nint)Blockwise.CodeBytes(n, CodeBook.NF4));
        absmax4 = device.Allocate<float>((nint)Blockwise.BlockCount(n, 64));
        Blockwise.Quantize<float>(x, CodeBook.DynamicSigned, BlockSize, codes, absmax);
        Blockwise.Quantize<float>(x, CodeBook.NF4, 64, codes4, absmax4);
        device.Synchronize();
    }

    /// <summary>8-bit dynamic quantize.</summary>
    [Benchmark]
    public void Quantize8()
    {
        Blockwise.Quantize<float>(x, CodeBook.DynamicSigned, BlockSize, codes, absmax);
        device.Synchronize();
    }

    /// <summary>8-bit dynamic dequantize.</summary>
    [Benchmark]
    public void Dequantize8()
    {
        Blockwise.Dequantize<float>(codes, absmax, CodeBook.DynamicSigned, BlockSize, y);
        device.Synchronize();
    }

    /// <summary>NF4 quantize at B = 64.</summary>
    [Benchmark]
    public void QuantizeNf4()
    {
        Blockwise.Quantize<float>(x, CodeBook.NF4, 64, codes4, absmax4);
        device.Synchronize();
    }

    /// <summary>NF4 dequantize at B = 64.</summary>
    [Benchmark]
    public void DequantizeNf4()
    {
        Blockwise.Dequantize<float>(codes4, absmax4, CodeBook.NF4, 64, y);
        device.Synchronize();
    }

    /// <summary>The CPU reference, 8-bit quantize (single-threaded host code).</summary>
    [Benchmark]
    public (byte[], float[]) ReferenceQuantize8() => BlockwiseReference.Quantize<float>(host, CodeBook.DynamicSigned, BlockSize);

    /// <summary>Frees the buffers.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        x.Dispose(); y.Dispose(); codes.Dispose(); absmax.Dispose(); codes4.Dispose(); absmax4.Dispose();
    }
}
