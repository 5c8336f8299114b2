using Kernels.Lora;
using Kernels.Quantization;
using Kernels.Tests.Harness;
using Xunit;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Tests.Lora;

/// <summary>The LoRA operations on a real GPU (real mma.sync, cp.async, 256-thread groups) against the f64 reference; skipped without CUDA.</summary>
public class LoraGpuTests
{
    [Fact]
    public void ForwardBackwardSegmentedAndQuantizedOnGpu()
    {
        var device = Devices.RequireCuda();
        var seed = Seeded.Create();
        const int m = 777, k = 520, n = 392, r = 16; // several tiles, 2 split-M chunks, K not a multiple of 64
        float alpha = 2f;
        using var x = LoraOperand<DeviceHalf>.Random(device, seed, 1f, m, k);
        using var w = LoraOperand<DeviceHalf>.Random(device, seed, 0.05f, n, k);
        using var a = LoraOperand<DeviceHalf>.Random(device, seed, 0.1f, r, k);
        using var b = LoraOperand<DeviceHalf>.Random(device, seed, 0.1f, n, r);
        using var dy = LoraOperand<DeviceHalf>.Random(device, seed, 1f, m, n);
        var dropout = LoraTestData.Dropout(seed, 0.1f);

        using var s = LoraTestData.Poisoned(device, m, r);
        using var y = LoraTestData.PoisonedOf<DeviceHalf>(device, m, n);
        Kernels.Lora.Lora.Forward<DeviceHalf>(x.Device, w.Device, a.Device, b.Device, null, alpha, dropout, s, y);
        var ey = new double[m * n];
        LoraReference.Forward(x.Host, w.Host, a.Host, b.Host, [], m, k, n, r, alpha, dropout, ey);
        Compare.Close(Compare.ToFloat<DeviceHalf>(y.ToArray()), ey, Compare.F16, "GPU forward", seed);

        using var ds = LoraTestData.Poisoned(device, m, r);
        using var da = LoraTestData.Poisoned(device, r, k);
        using var db = LoraTestData.Poisoned(device, n, r);
        using var dx = LoraTestData.PoisonedOf<DeviceHalf>(device, m, k);
        Kernels.Lora.Lora.Backward<DeviceHalf>(dy.Device, x.Device, w.Device, a.Device, b.Device, s, alpha, dropout, ds, da, db, dx);
        var eds = new double[m * r];
        var eda = new double[r * k];
        var edb = new double[n * r];
        var edx = new double[m * k];
        LoraReference.Backward(dy.Host, x.Host, w.Host, a.Host, b.Host, m, k, n, r, alpha, dropout, eds, eda, edb, edx);
        Compare.Close(ds.ToArray(), eds, 1e-4, "GPU dS", seed);
        Compare.Close(da.ToArray(), eda, 1e-4, "GPU dA", seed);
        Compare.Close(db.ToArray(), edb, 1e-4, "GPU dB", seed);
        Compare.Close(Compare.ToFloat<DeviceHalf>(dx.ToArray()), edx, Compare.F16, "GPU dX", seed);
        var daFirst = da.ToArray();
        Kernels.Lora.Lora.Backward<DeviceHalf>(dy.Device, x.Device, w.Device, a.Device, b.Device, s, alpha, dropout, ds, da, db, dx);
        Compare.Exact<float>(da.ToArray(), daFirst, "GPU dA is deterministic", seed);

        var (typed, host) = LoraTestData.Adapters<DeviceHalf>(seed, k, n, 8, 16, 64);
        using var set = LoraAdapterSet<DeviceHalf>.Create(device, k, n, typed);
        using var batch = LoraBatch.FromSegments(device, [0, 1, 300, 301, 700, m], [2, 0, -1, 1, 2]);
        using var sm = LoraTestData.Poisoned(device, m, set.MaxRank);
        Kernels.Lora.Lora.SegmentedForward<DeviceHalf>(x.Device, w.Device, null, set, batch, dropout, sm, y);
        LoraReference.SegmentedForward(x.Host, w.Host, [], host, batch.RowAdapters, m, k, n, dropout, ey);
        Compare.Close(Compare.ToFloat<DeviceHalf>(y.ToArray()), ey, Compare.F16, "GPU SGMV forward", seed);

        using var q = BlockwiseQuantized.Quantize<DeviceHalf>(w.Device.ReadOnlySpan.Reshape(n * k), CodeBook.NF4, 64, nested: true);
        using var wdq = device.Allocate<DeviceHalf>(n, k);
        q.Dequantize<DeviceHalf>(wdq.Span.Reshape(n * k));
        Kernels.Lora.Lora.QuantizedForward<DeviceHalf>(x.Device, q, a.Device, b.Device, null, alpha, dropout, s, y);
        LoraReference.Forward(x.Host, Compare.ToFloat<DeviceHalf>(wdq.ToArray()), a.Host, b.Host, [], m, k, n, r, alpha, dropout, ey);
        Compare.Close(Compare.ToFloat<DeviceHalf>(y.ToArray()), ey, Compare.F16, "GPU QLoRA forward", seed);
    }
}
