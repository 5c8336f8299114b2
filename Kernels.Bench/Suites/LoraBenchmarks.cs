using BenchmarkDotNet.Attributes;
using Kernels.Lora;
using Kernels.Runtime;
using Kernels.Tensors;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Bench.Suites;

/// <summary>
/// BenchmarkDotNet suite for fused LoRA on the default device: forward, backward and SGMV forward at LoRAFusion's
/// point (M = 8192, K = N = 4096, r = 16, p = 0.1, f16) on a GPU, tiny shapes on the CPU accelerator. Each
/// iteration enqueues one call and waits for the stream.
/// </summary>
[MemoryDiagnoser]
public class LoraBenchmarks
{
    private ComputeDevice device = null!;
    private DeviceTensor<DeviceHalf> x = null!, w = null!, a = null!, b = null!, y = null!, dy = null!, dx = null!;
    private DeviceTensor<float> s = null!, ds = null!, da = null!, db = null!, sMulti = null!;
    private LoraAdapterSet<DeviceHalf> set = null!;
    private LoraBatch batch = null!;
    private readonly LoraDropout dropout = new(0.1f, 1234);

    /// <summary>Rank of the single adapter.</summary>
    [Params(16)]
    public int Rank { get; set; }

    /// <summary>Allocates and fills the operands.</summary>
    [GlobalSetup]
    public void Setup()
    {
        device = ComputeDevice.Default;
        bool full = device.IsCuda;
        int m = full ? 8192 : 32, k = full ? 4096 : 64, n = full ? 4096 : 64;
        var random = new Random(3);
        DeviceTensor<DeviceHalf> Make(float std, params nint[] lengths)
        {
            long count = lengths.Aggregate(1L, (p, q) => p * q);
            var host = new DeviceHalf[count];
            for (long i = 0; i < count; i++) host[i] = (DeviceHalf)(float)((random.NextDouble() * 2 - 1) * std);
            return device.Upload<DeviceHalf>(host, lengths);
        }
        x = Make(1f, m, k);
        w = Make(0.02f, n, k);
        a = Make(0.02f, Rank, k);
        b = Make(0.02f, n, Rank);
        dy = Make(1f, m, n);
        y = device.Allocate<DeviceHalf>(m, n);
        dx = device.Allocate<DeviceHalf>(m, k);
        s = device.Allocate<float>(m, Rank);
        ds = device.Allocate<float>(m, Rank);
        da = device.Allocate<float>(Rank, k);
        db = device.Allocate<float>(n, Rank);
        var adapters = new List<LoraAdapter<DeviceHalf>>();
        foreach (int r in new[] { 8, 16, 32, 64 })
        {
            var ah = new DeviceHalf[r * k];
            var bh = new DeviceHalf[n * r];
            for (int i = 0; i < ah.Length; i++) ah[i] = (DeviceHalf)(float)((random.NextDouble() * 2 - 1) * 0.02);
            for (int i = 0; i < bh.Length; i++) bh[i] = (DeviceHalf)(float)((random.NextDouble() * 2 - 1) * 0.02);
            adapters.Add(new LoraAdapter<DeviceHalf>(r, 32f / r, ah, bh));
        }
        set = LoraAdapterSet<DeviceHalf>.Create(device, k, n, adapters);
        batch = LoraBatch.FromSegments(device, [0, 1, m / 2, m / 2 + m / 4, m], [3, 0, 1, 2]);
        sMulti = device.Allocate<float>(m, set.MaxRank);
        Kernels.Lora.Lora.Shrink<DeviceHalf>(x, a, dropout, s);
        device.Synchronize();
    }

    /// <summary>Fused forward (shrink + GEMM with the LoRA epilogue).</summary>
    [Benchmark]
    public void Forward()
    {
        Kernels.Lora.Lora.Forward<DeviceHalf>(x, w, a, b, null, 2f, dropout, s, y);
        device.Synchronize();
    }

    /// <summary>Full backward (dS/dB, dA, dX).</summary>
    [Benchmark]
    public void Backward()
    {
        Kernels.Lora.Lora.Backward<DeviceHalf>(dy, x, w, a, b, s, 2f, dropout, ds, da, db, dx);
        device.Synchronize();
    }

    /// <summary>Multi-adapter forward, 4 skewed segments.</summary>
    [Benchmark]
    public void SegmentedForward()
    {
        Kernels.Lora.Lora.SegmentedForward<DeviceHalf>(x, w, null, set, batch, dropout, sMulti, y);
        device.Synchronize();
    }

    /// <summary>Releases the operands.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var t in new IDisposable[] { x, w, a, b, y, dy, dx, s, ds, da, db, sMulti, set, batch }) t.Dispose();
    }
}
