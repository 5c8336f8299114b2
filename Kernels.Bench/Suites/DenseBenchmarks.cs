using BenchmarkDotNet.Attributes;
using Kernels.Runtime;
using Kernels.Tensors;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Bench.Suites;

/// <summary>
/// BenchmarkDotNet view of the dense baselines on <c>KERNELS_DEVICE</c>: each invocation enqueues one call and waits
/// for the stream, so the time includes launch overhead (the tour's event timing excludes it). LLaMA-7B shapes on a
/// GPU, small ones on the CPU accelerator.
/// </summary>
[MemoryDiagnoser]
public class DenseBenchmarks
{
    private ComputeDevice device = null!;
    private DeviceTensor<DeviceHalf> w = null!, x = null!, y = null!, xv = null!, yv = null!;

    /// <summary>Tokens for the GEMM.</summary>
    [Params(16, 4096)]
    public int N { get; set; }

    /// <summary>Allocates the operands.</summary>
    [GlobalSetup]
    public void Setup()
    {
        device = ComputeDevice.Default;
        int m = device.IsCuda ? 4096 : 64, k = device.IsCuda ? 4096 : 64, n = device.IsCuda ? N : Math.Min(N, 8);
        var random = new Random(7);
        DeviceHalf[] Fill(long count) => Enumerable.Range(0, (int)count).Select(_ => (DeviceHalf)(float)(random.NextDouble() - 0.5)).ToArray();
        w = device.Upload<DeviceHalf>(Fill((long)m * k), m, k);
        x = device.Upload<DeviceHalf>(Fill((long)n * k), n, k);
        y = device.Allocate<DeviceHalf>(n, m);
        xv = device.Upload<DeviceHalf>(Fill(k), k);
        yv = device.Allocate<DeviceHalf>(m);
    }

    /// <summary>Y = X·Wᵀ on the tile engine.</summary>
    [Benchmark]
    public void Gemm()
    {
        Dense.Dense.Gemm<DeviceHalf>(x, w, null, y);
        device.Synchronize();
    }

    /// <summary>y = W·x (independent of N).</summary>
    [Benchmark]
    public void Gemv()
    {
        Dense.Dense.Gemv<DeviceHalf>(w, xv, yv);
        device.Synchronize();
    }

    /// <summary>Releases the operands.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var t in new[] { w, x, y, xv, yv }) t?.Dispose();
    }
}
