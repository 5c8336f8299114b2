using BenchmarkDotNet.Attributes;
using Kernels.Runtime;
using Kernels.Sparse;
using Kernels.Tensors;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Bench.Suites;

/// <summary>
/// SpMM against the dense path at one OPT-30B shape (M = K = 7168 on a GPU; 256×256 on the CPU accelerator), f16,
/// per sparsity and token count; each invocation enqueues one call and waits for the stream. The tour reports the
/// same products with verification and roofline figures; this suite is for careful A/B timing.
/// </summary>
[MemoryDiagnoser]
public class SparseBenchmarks
{
    private TiledCslMatrix? matrix;
    private DeviceTensor<DeviceHalf>? x;
    private DeviceTensor<DeviceHalf>? y;
    private ComputeDevice device = null!;

    /// <summary>Fraction of zero weights.</summary>
    [Params(0.5, 0.7, 0.9)]
    public double Sparsity { get; set; }

    /// <summary>Tokens.</summary>
    [Params(8, 32)]
    public int N { get; set; }

    /// <summary>Encodes random weights and uploads the operands.</summary>
    [GlobalSetup]
    public void Setup()
    {
        device = ComputeDevice.Default;
        int size = device.IsCuda ? 7168 : 256;
        var random = new Random(1);
        var w = new System.Half[(long)size * size];
        for (long i = 0; i < w.Length; i++)
            if (random.NextDouble() >= Sparsity) w[i] = (System.Half)(random.NextSingle() * 2 - 1);
        matrix = TiledCslMatrix.Encode<System.Half>(device, w, size, size, wordOrder: TiledCslWordOrder.BankSpread);
        x = device.Allocate<DeviceHalf>(N, size);
        x.Span.Clear();
        y = device.Allocate<DeviceHalf>(N, size);
        // Warm the dense cache so the dense benchmark times the GEMM, not the one-time decode.
        SpMM.Multiply(x.ReadOnlySpan, matrix, y.Span, SpMMPath.Dense);
        device.Synchronize();
    }

    /// <summary>The sparse path (Tiled-CSL scatter on the tile engine).</summary>
    [Benchmark(Baseline = true)]
    public void Sparse()
    {
        SpMM.Multiply(x!.ReadOnlySpan, matrix!, y!.Span, SpMMPath.Sparse);
        device.Synchronize();
    }

    /// <summary>The dense path (engine GEMM on the cached dense copy).</summary>
    [Benchmark]
    public void Dense()
    {
        SpMM.Multiply(x!.ReadOnlySpan, matrix!, y!.Span, SpMMPath.Dense);
        device.Synchronize();
    }

    /// <summary>Releases the device buffers.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        matrix?.Dispose();
        x?.Dispose();
        y?.Dispose();
    }
}
