using BenchmarkDotNet.Attributes;
using Kernels.Bench.Tour;
using Kernels.Runtime;
using Kernels.SpQR;
using Kernels.Tensors;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Bench.Suites;

/// <summary>
/// BenchmarkDotNet suite of the SpQR family on <see cref="ComputeDevice.Default"/>: the fused GEMV and the batched GEMM
/// at a LLaMA-7B shape on a GPU (a small one on the CPU accelerator, whose times are not speed claims). Each operation
/// is enqueued and then synchronized, so the measured time is the device time plus the launch overhead.
/// </summary>
[MemoryDiagnoser]
public class SpqrBenchmarks
{
    private SpqrMatrix? matrix;
    private DeviceTensor<DeviceHalf>? x1, y1, xb, yb, dense;
    private ComputeDevice device = null!;

    /// <summary>Tokens of the batched case.</summary>
    [Params(16)]
    public int Tokens { get; set; }

    /// <summary>Builds the matrix (synthetic packed data on a GPU, the encoder on the CPU) and the activations.</summary>
    [GlobalSetup]
    public void Setup()
    {
        device = ComputeDevice.Default;
        bool full = device.IsCuda;
        int m = full ? 11008 : 40, n = full ? 4096 : 136;
        var packed = SpqrTourData.Make(m, n, full);
        matrix = new SpqrMatrix(device, packed);
        var random = new Random(1);
        x1 = DeviceTensor.FromHalf(device, Enumerable.Range(0, n).Select(_ => (Half)(random.NextDouble() - 0.5)).ToArray(), n);
        y1 = device.Allocate<DeviceHalf>(m);
        xb = DeviceTensor.FromHalf(device, Enumerable.Range(0, n * Tokens).Select(_ => (Half)(random.NextDouble() - 0.5)).ToArray(), Tokens, n);
        yb = device.Allocate<DeviceHalf>(Tokens, m);
        dense = device.Allocate<DeviceHalf>(m, n);
    }

    /// <summary>y = W·x, one token.</summary>
    [Benchmark]
    public void Gemv()
    {
        Spqr.Gemv(matrix!, x1!, y1!);
        device.Synchronize();
    }

    /// <summary>Y = X·Wᵀ for <see cref="Tokens"/> tokens.</summary>
    [Benchmark]
    public void Gemm()
    {
        Spqr.Gemm(matrix!, xb!, yb!);
        device.Synchronize();
    }

    /// <summary>Decode to dense fp16.</summary>
    [Benchmark]
    public void Decode()
    {
        Spqr.Decode(matrix!, dense!);
        device.Synchronize();
    }

    /// <summary>Releases the buffers.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var t in new[] { x1, y1, xb, yb, dense }) t?.Dispose();
        matrix?.Dispose();
    }
}
