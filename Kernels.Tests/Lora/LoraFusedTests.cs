using Kernels.Lora;
using Kernels.Tensors;
using Kernels.Tests.Harness;
using Xunit;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Tests.Lora;

/// <summary>The fused forward, the full backward and the multi-adapter forward (tile engine + LoRA epilogues) against the f64 reference.</summary>
public class LoraFusedTests
{
    private static readonly ComputeDeviceRef Device = new();

    [Theory]
    [InlineData(1, 1, 0f, true, false, 40, 24)]
    [InlineData(7, 8, 0.1f, false, false, 37, 21)] // K not a multiple of 8: the engine's scalar copy path
    [InlineData(129, 16, 0.1f, true, false, 40, 24)]
    [InlineData(129, 64, 0f, false, true, 40, 24)]
    [InlineData(7, 64, 0.1f, true, false, 40, 24)]
    [InlineData(129, 1, 0f, true, true, 37, 21)]
    [InlineData(1, 16, 0.1f, false, false, 40, 24)]
    public void ForwardMatchesReference(int m, int r, float p, bool withBias, bool bf16, int k, int n)
    {
        if (bf16) ForwardCase<BFloat16>(m, r, p, withBias, k, n);
        else ForwardCase<DeviceHalf>(m, r, p, withBias, k, n);
    }

    private static void ForwardCase<T>(int m, int r, float p, bool withBias, int k, int n) where T : unmanaged
    {
        var seed = Seeded.Create();
        var device = Device.Value;
        float alpha = 16f / r;
        using var x = LoraOperand<T>.Random(device, seed, 1f, m, k);
        using var w = LoraOperand<T>.Random(device, seed, 0.2f, n, k);
        using var a = LoraOperand<T>.Random(device, seed, 0.3f, r, k);
        using var b = LoraOperand<T>.Random(device, seed, 0.3f, n, r);
        using var bias = LoraOperand<T>.Random(device, seed, 1f, n);
        var dropout = LoraTestData.Dropout(seed, p);
        using var s = LoraTestData.Poisoned(device, m, r);
        using var y = LoraTestData.PoisonedOf<T>(device, m, n);
        Kernels.Lora.Lora.Forward<T>(x.Device, w.Device, a.Device, b.Device, withBias ? bias.Device.ReadOnlySpan : null, alpha, dropout, s, y);
        var got = Compare.ToFloat<T>(y.ToArray());
        Poison.AssertAllWritten<float>(got, "Y", seed);
        var expected = new double[m * n];
        LoraReference.Forward(x.Host, w.Host, a.Host, b.Host, withBias ? bias.Host : [], m, k, n, r, alpha, dropout, expected);
        Compare.Close(got, expected, LoraTestData.Bound<T>(), $"Y {ElementTypes.Name<T>()} m={m} r={r} p={p}", seed);
        var es = new double[m * r];
        LoraReference.Shrink(x.Host, a.Host, m, k, r, dropout, es);
        Compare.Close(s.ToArray(), es, Compare.F32, "S", seed);
    }

    [Theory]
    [InlineData(1, 8, 0f, false, 40, 24)]
    [InlineData(7, 16, 0.1f, false, 37, 21)] // N, K not multiples of 8: scalar copies of dY, edge tiles of Wᵀ
    [InlineData(129, 8, 0.1f, false, 40, 24)]
    [InlineData(33, 64, 0f, true, 40, 24)]
    [InlineData(129, 1, 0.1f, true, 37, 21)]
    public void BackwardMatchesReference(int m, int r, float p, bool bf16, int k, int n)
    {
        if (bf16) BackwardCase<BFloat16>(m, r, p, k, n);
        else BackwardCase<DeviceHalf>(m, r, p, k, n);
    }

    private static void BackwardCase<T>(int m, int r, float p, int k, int n) where T : unmanaged
    {
        var seed = Seeded.Create();
        var device = Device.Value;
        float alpha = 16f / r;
        using var x = LoraOperand<T>.Random(device, seed, 1f, m, k);
        using var w = LoraOperand<T>.Random(device, seed, 0.2f, n, k);
        using var a = LoraOperand<T>.Random(device, seed, 0.3f, r, k);
        using var b = LoraOperand<T>.Random(device, seed, 0.3f, n, r);
        using var dy = LoraOperand<T>.Random(device, seed, 1f, m, n);
        var dropout = LoraTestData.Dropout(seed, p);
        using var s = LoraTestData.Poisoned(device, m, r);
        using var y = device.Allocate<T>(m, n);
        Kernels.Lora.Lora.Forward<T>(x.Device, w.Device, a.Device, b.Device, null, alpha, dropout, s, y);
        using var ds = LoraTestData.Poisoned(device, m, r);
        using var da = LoraTestData.Poisoned(device, r, k);
        using var db = LoraTestData.Poisoned(device, n, r);
        using var dx = LoraTestData.PoisonedOf<T>(device, m, k);
        Kernels.Lora.Lora.Backward<T>(dy.Device, x.Device, w.Device, a.Device, b.Device, s, alpha, dropout, ds, da, db, dx);

        var eds = new double[m * r];
        var eda = new double[r * k];
        var edb = new double[n * r];
        var edx = new double[m * k];
        LoraReference.Backward(dy.Host, x.Host, w.Host, a.Host, b.Host, m, k, n, r, alpha, dropout, eds, eda, edb, edx);
        string tag = $"{ElementTypes.Name<T>()} m={m} r={r} p={p}";
        foreach (var (name, t, e) in new[] { ("dS", ds, eds), ("dA", da, eda), ("dB", db, edb) })
        {
            var got = t.ToArray();
            Poison.AssertAllWritten<float>(got, name, seed);
            Compare.Close(got, e, Compare.F32, $"{name} {tag}", seed);
        }
        var gotDx = Compare.ToFloat<T>(dx.ToArray());
        Poison.AssertAllWritten<float>(gotDx, "dX", seed);
        Compare.Close(gotDx, edx, LoraTestData.Bound<T>(), $"dX {tag}", seed);
    }

    /// <summary>dX with W = 0, dS = I and A = 1 is exactly the scaled mask; it must match the host mask and the shrink's.</summary>
    [Fact]
    public void DxKernelAppliesTheForwardMask()
    {
        var seed = Seeded.Create();
        var device = Device.Value;
        const int size = 8;
        var dropout = new LoraDropout(0.5f, (ulong)seed.Random.NextInt64(), 11);
        var identity = new float[size * size];
        for (int i = 0; i < size; i++) identity[i * size + i] = 1f;
        using var x = new LoraOperand<DeviceHalf>(device, Enumerable.Repeat(1f, size * size).ToArray(), size, size);
        using var eye = new LoraOperand<DeviceHalf>(device, identity, size, size);
        using var ones = new LoraOperand<DeviceHalf>(device, Enumerable.Repeat(1f, size * size).ToArray(), size, size);
        using var zero = new LoraOperand<DeviceHalf>(device, new float[size * size], size, size);
        using var s = LoraTestData.Poisoned(device, size, size);
        using var y = device.Allocate<DeviceHalf>(size, size);
        Kernels.Lora.Lora.Forward<DeviceHalf>(x.Device, zero.Device, eye.Device, eye.Device, null, 1f, dropout, s, y);
        using var ds = LoraTestData.Poisoned(device, size, size);
        using var da = LoraTestData.Poisoned(device, size, size);
        using var db = LoraTestData.Poisoned(device, size, size);
        using var dx = LoraTestData.PoisonedOf<DeviceHalf>(device, size, size);
        Kernels.Lora.Lora.Backward<DeviceHalf>(eye.Device, x.Device, zero.Device, ones.Device, eye.Device, s, 1f, dropout, ds, da, db, dx);
        var expected = new float[size * size];
        for (int e = 0; e < expected.Length; e++) expected[e] = dropout.Keeps(e) ? 2f : 0f;
        Compare.Exact<float>(s.ToArray(), expected, "forward mask (S = drop(X))", seed);
        Compare.Exact<float>(Compare.ToFloat<DeviceHalf>(dx.ToArray()), expected, "backward mask (dX)", seed);
        Compare.Exact<float>(Compare.ToFloat<DeviceHalf>(y.ToArray()), expected, "forward output (Y = S)", seed);
    }

    public static TheoryData<int[], int[]> Segments => new()
    {
        { new[] { 0, 1, 40 }, new[] { 2, 0 } },                 // skewed: 1 row and 39 rows
        { new[] { 0, 40 }, new[] { 1 } },                       // identical: one adapter for all
        { new[] { 0, 1, 2, 3, 4, 5 }, new[] { 0, -1, 2, 1, 0 } }, // one-row segments, one without adapter
        { new[] { 0, 17, 17, 30, 33 }, new[] { 1, 0, -1, 2 } },  // segments straddling tiles, an empty one
    };

    [Theory]
    [MemberData(nameof(Segments))]
    public void SegmentedForwardMatchesReference(int[] starts, int[] ids)
    {
        var seed = Seeded.Create();
        var device = Device.Value;
        const int k = 40, n = 24;
        int m = starts[^1];
        var (typed, host) = LoraTestData.Adapters<DeviceHalf>(seed, k, n, 8, 16, 1);
        using var set = LoraAdapterSet<DeviceHalf>.Create(device, k, n, typed);
        using var batch = LoraBatch.FromSegments(device, starts, ids);
        using var x = LoraOperand<DeviceHalf>.Random(device, seed, 1f, m, k);
        using var w = LoraOperand<DeviceHalf>.Random(device, seed, 0.2f, n, k);
        using var bias = LoraOperand<DeviceHalf>.Random(device, seed, 1f, n);
        var dropout = LoraTestData.Dropout(seed, 0.1f);
        using var s = LoraTestData.Poisoned(device, m, set.MaxRank);
        using var y = LoraTestData.PoisonedOf<DeviceHalf>(device, m, n);
        Kernels.Lora.Lora.SegmentedForward<DeviceHalf>(x.Device, w.Device, bias.Device.ReadOnlySpan, set, batch, dropout, s, y);
        var got = Compare.ToFloat<DeviceHalf>(y.ToArray());
        Poison.AssertAllWritten<float>(got, "Y", seed);
        Poison.AssertAllWritten<float>(s.ToArray(), "S", seed);
        var expected = new double[m * n];
        LoraReference.SegmentedForward(x.Host, w.Host, bias.Host, host, batch.RowAdapters, m, k, n, dropout, expected);
        Compare.Close(got, expected, Compare.F16, "segmented Y", seed);
    }

    [Fact]
    public void FusedOperationsRejectBadInputBeforeLaunch()
    {
        var seed = Seeded.Create();
        var device = Device.Value;
        using var x = LoraOperand<DeviceHalf>.Random(device, seed, 1f, 3, 8);
        using var w = LoraOperand<DeviceHalf>.Random(device, seed, 1f, 5, 8);
        using var a = LoraOperand<DeviceHalf>.Random(device, seed, 1f, 4, 8);
        using var b3 = LoraOperand<DeviceHalf>.Random(device, seed, 1f, 5, 3);
        using var b4 = LoraOperand<DeviceHalf>.Random(device, seed, 1f, 5, 4);
        using var bias = LoraOperand<DeviceHalf>.Random(device, seed, 1f, 6);
        using var s = LoraTestData.Poisoned(device, 3, 4);
        using var y = LoraTestData.PoisonedOf<DeviceHalf>(device, 3, 5);
        var sBefore = s.ToArray();
        var yBefore = y.ToArray();
        Assert.Throws<ArgumentException>(() => Kernels.Lora.Lora.Forward<DeviceHalf>(x.Device, w.Device, a.Device, b3.Device, null, 1f, default, s, y)); // rank 4 vs 3
        Assert.Throws<ArgumentException>(() => Kernels.Lora.Lora.Forward<DeviceHalf>(x.Device, w.Device, a.Device, b4.Device, bias.Device.ReadOnlySpan, 1f, default, s, y));
        Assert.Throws<ArgumentOutOfRangeException>(() => Kernels.Lora.Lora.Forward<DeviceHalf>(x.Device, w.Device, a.Device, b4.Device, null, float.NaN, default, s, y));
        using var xf = device.Upload<float>(new float[24], 3, 8);
        using var wf = device.Upload<float>(new float[40], 5, 8);
        using var af = device.Upload<float>(new float[32], 4, 8);
        using var bf = device.Upload<float>(new float[20], 5, 4);
        using var yf = LoraTestData.Poisoned(device, 3, 5);
        Assert.Throws<ArgumentException>(() => Kernels.Lora.Lora.Forward<float>(xf, wf, af, bf, null, 1f, default, s, yf)); // f32 has no tensor-core path

        var (typed, _) = LoraTestData.Adapters<DeviceHalf>(seed, 8, 5, 4, 2);
        using var set = LoraAdapterSet<DeviceHalf>.Create(device, 8, 5, typed);
        using var unknown = LoraBatch.FromSegments(device, [0, 1, 3], [1, 2]);
        Assert.Throws<ArgumentOutOfRangeException>(() => Kernels.Lora.Lora.SegmentedForward<DeviceHalf>(x.Device, w.Device, null, set, unknown, default, s, y));
        using var tooFew = LoraBatch.FromSegments(device, [0, 2], [1]);
        Assert.Throws<ArgumentException>(() => Kernels.Lora.Lora.SegmentedForward<DeviceHalf>(x.Device, w.Device, null, set, tooFew, default, s, y));

        using var dx = LoraTestData.PoisonedOf<DeviceHalf>(device, 3, 8);
        var dxBefore = dx.ToArray();
        using var dsWrong = device.Upload<float>(new float[9], 3, 3);
        using var dy = LoraOperand<DeviceHalf>.Random(device, seed, 1f, 3, 5);
        Assert.Throws<ArgumentException>(() => Kernels.Lora.Lora.BackwardDx<DeviceHalf>(dy.Device, w.Device, dsWrong, a.Device, default, dx));
        Poison.AssertUnchanged(s, sBefore, "S");
        LoraTestData.AssertBitsUnchanged(y, yBefore, "Y");
        LoraTestData.AssertBitsUnchanged(dx, dxBefore, "dX");
    }
}
