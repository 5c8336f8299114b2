using BenchmarkDotNet.Attributes;
using Kernels.Optimizers;
using Kernels.Runtime;
using Kernels.Tensors;

namespace Kernels.Bench.Suites;

/// <summary>
/// One fused 8-bit optimizer step on the default device (2^26 f32 parameters on a GPU, 2^14 on the CPU accelerator),
/// each followed by a device synchronize, plus the quantized CPU reference at 2^14 for scale. Run with
/// <c>dotnet run --project Kernels.Bench -c Release -- bdn --filter *Optimizers*</c>.
/// </summary>
public class OptimizersBenchmarks
{
    private ComputeDevice device = null!;
    private DeviceTensor<float> p = null!, g = null!;
    private Optimizer8BitState state = null!;
    private float[] hostP = [], hostG = [];
    private Optimizer8BitStateSnapshot hostState = null!;
    private long step;

    /// <summary>The optimizer.</summary>
    [Params(OptimizerKind.AdamW, OptimizerKind.Lion)]
    public OptimizerKind Kind { get; set; }

    /// <summary>Allocates and fills the buffers.</summary>
    [GlobalSetup]
    public void Setup()
    {
        device = ComputeDevice.Default;
        long n = device.IsCuda ? 1L << 26 : 1L << 14;
        var random = new Random(7);
        var p0 = new float[n];
        var g0 = new float[n];
        for (long i = 0; i < n; i++)
        {
            p0[i] = (float)(random.NextDouble() - 0.5) * 0.2f;
            g0[i] = (float)(random.NextDouble() - 0.5) * 0.02f;
        }
        p = device.Upload<float>(p0);
        g = device.Upload<float>(g0);
        state = Optimizer8BitState.Create(device, Kind, n);
        hostP = p0.AsSpan(0, 1 << 14).ToArray();
        hostG = g0.AsSpan(0, 1 << 14).ToArray();
        hostState = Optimizer8BitState.ZeroSnapshot(Kind, hostP.Length, Optimizer8BitState.DefaultBlockSize, quantized: true);
    }

    /// <summary>Releases the buffers.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        p.Dispose();
        g.Dispose();
        state.Dispose();
    }

    /// <summary>One fused step on the device.</summary>
    [Benchmark]
    public void Step()
    {
        Optimizer8Bit.Step<float, float>(g, state, OptimizerSettings.Defaults(Kind, 1e-4f), ++step, p);
        device.Synchronize();
    }

    /// <summary>The quantized CPU reference on 2^14 parameters.</summary>
    [Benchmark]
    public int Reference() =>
        Optimizer8BitReference.Step<float, float>(hostG, hostState, OptimizerSettings.Defaults(Kind, 1e-4f), ++step, hostP);
}
