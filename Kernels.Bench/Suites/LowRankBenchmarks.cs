using BenchmarkDotNet.Attributes;
using Kernels.LowRank;
using Kernels.Runtime;
using Kernels.Tensors;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Bench.Suites;

/// <summary>
/// BenchmarkDotNet suite of the LowRank family on <see cref="ComputeDevice.Default"/>: GaLore projection, the fused
/// apply, one warm subspace iteration and the one-pass StreamMatmul. Each invocation synchronizes so the measured time
/// is device time. Shapes: the LLaMA-7B MLP gradient (11008×4096, r = 128) and M = 8192, K = N = 4096, r = 64 on a
/// GPU; small ones on the CPU accelerator (where timings are not speed claims).
/// </summary>
[MemoryDiagnoser]
public class LowRankBenchmarks
{
    private ComputeDevice device = null!;
    private DeviceTensor<float> gradient = null!, projector = null!, projected = null!, weight = null!, lowRank = null!;
    private DeviceTensor<DeviceHalf> x = null!, v = null!, u = null!, y = null!;
    private DeviceTensor<float> s = null!;

    /// <summary>Allocates the operands once.</summary>
    [GlobalSetup]
    public void Setup()
    {
        device = ComputeDevice.Default;
        bool gpu = device.IsCuda;
        int m = gpu ? 11008 : 96, n = gpu ? 4096 : 64, r = gpu ? 128 : 8;
        var rng = new Random(1);
        float[] Noise(long count) => Enumerable.Range(0, (int)count).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
        gradient = device.Upload<float>(Noise((long)m * n), m, n);
        projector = device.Upload<float>(Noise((long)r * n), r, n);
        projected = device.Allocate<float>(m, r);
        lowRank = device.Upload<float>(Noise((long)m * r), m, r);
        weight = device.Upload<float>(Noise((long)m * n), m, n);
        int sm = gpu ? 8192 : 64, sk = gpu ? 4096 : 64, sn = gpu ? 4096 : 64, sr = gpu ? 64 : 16;
        x = device.Upload(ElementTypes.FromFloat<DeviceHalf>(Noise((long)sm * sk)), sm, sk);
        v = device.Upload(ElementTypes.FromFloat<DeviceHalf>(Noise((long)sk * sr)), sk, sr);
        u = device.Upload(ElementTypes.FromFloat<DeviceHalf>(Noise((long)sn * sr)), sn, sr);
        s = device.Upload<float>(Noise(sr), sr);
        y = device.Allocate<DeviceHalf>(sm, sn);
    }

    /// <summary>R = G·Qᵀ (GaLore project).</summary>
    [Benchmark]
    public void GaLoreProject()
    {
        GaLore.Project(gradient, projector, ProjectionSide.Right, projected);
        device.Synchronize();
    }

    /// <summary>W −= lr·scale·N·Q in one pass.</summary>
    [Benchmark]
    public void GaLoreFusedApply()
    {
        GaLore.ApplyUpdate(lowRank, projector, ProjectionSide.Right, 1e-6f, 0.25f, weight);
        device.Synchronize();
    }

    /// <summary>One warm subspace iteration (two passes over G, CholeskyQR2).</summary>
    [Benchmark]
    public void WarmSubspaceIteration() => Subspace.WarmIterate(gradient, ProjectionSide.Right, 1, projector);

    /// <summary>y = ((x·V)⊙s)·Uᵀ, one-pass.</summary>
    [Benchmark]
    public void StreamMatmul()
    {
        LowRankProduct.StreamMatmul<DeviceHalf>(x, v, s, u, default, y);
        device.Synchronize();
    }

    /// <summary>Releases the operands.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var t in new IDisposable[] { gradient, projector, projected, weight, lowRank, x, v, u, y, s }) t.Dispose();
    }
}
