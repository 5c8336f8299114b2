using Kernels.Lora;
using Kernels.Tensors;
using Kernels.Tests.Harness;
using Xunit;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Tests.Lora;

/// <summary>The rank-space kernels (shrink, dS, dB, dA) against the f64 reference.</summary>
public class LoraGradientTests
{

    [Theory]
    [InlineData(1, 1, 0f)]
    [InlineData(7, 8, 0.1f)]
    [InlineData(129, 16, 0f)]
    [InlineData(129, 64, 0.1f)]
    [InlineData(7, 1, 0.1f)]
    [InlineData(1, 64, 0f)]
    public void ShrinkMatchesReference(int m, int r, float p)
    {
        ShrinkCase<DeviceHalf>(m, r, p);
        ShrinkCase<BFloat16>(m, r, p);
    }

    [Fact]
    public void ShrinkF32() => ShrinkCase<float>(7, 16, 0.1f);

    private static void ShrinkCase<T>(int m, int r, float p) where T : unmanaged
    {
        var seed = Seeded.Create();
        var device = Devices.CpuSmall; // plain kernels: the small-warp device keeps barriers cheap
        const int k = 40;
        using var x = LoraOperand<T>.Random(device, seed, 1f, m, k);
        using var a = LoraOperand<T>.Random(device, seed, 0.5f, r, k);
        var dropout = LoraTestData.Dropout(seed, p);
        using var s = LoraTestData.Poisoned(device, m, r);
        Kernels.Lora.Lora.Shrink<T>(x.Device, a.Device, dropout, s);
        var got = s.ToArray();
        Poison.AssertAllWritten<float>(got, "S", seed);
        var expected = new double[m * r];
        LoraReference.Shrink(x.Host, a.Host, m, k, r, dropout, expected);
        Compare.Close(got, expected, Compare.F32, $"S {ElementTypes.Name<T>()} m={m} r={r} p={p}", seed);
    }

    [Theory]
    [InlineData(1, 1, 0f)]
    [InlineData(7, 8, 0.1f)]
    [InlineData(129, 16, 0.1f)]
    [InlineData(129, 64, 0f)]
    [InlineData(520, 4, 0.1f)] // more than one 512-row chunk: split-M partials + ordered reduction
    public void GradientsDsDbDaMatchReference(int m, int r, float p)
    {
        var seed = Seeded.Create();
        var device = Devices.CpuSmall; // plain kernels: the small-warp device keeps barriers cheap
        int k = m > 512 ? 9 : 24, n = m > 512 ? 6 : 20;
        float alpha = 2f / r;
        using var x = LoraOperand<DeviceHalf>.Random(device, seed, 1f, m, k);
        using var w = LoraOperand<DeviceHalf>.Random(device, seed, 0.2f, n, k);
        using var a = LoraOperand<DeviceHalf>.Random(device, seed, 0.5f, r, k);
        using var b = LoraOperand<DeviceHalf>.Random(device, seed, 0.5f, n, r);
        using var dy = LoraOperand<DeviceHalf>.Random(device, seed, 1f, m, n);
        var dropout = LoraTestData.Dropout(seed, p);

        using var s = LoraTestData.Poisoned(device, m, r);
        Kernels.Lora.Lora.Shrink<DeviceHalf>(x.Device, a.Device, dropout, s);
        using var ds = LoraTestData.Poisoned(device, m, r);
        using var db = LoraTestData.Poisoned(device, n, r);
        using var da = LoraTestData.Poisoned(device, r, k);
        Kernels.Lora.Lora.BackwardDsDb<DeviceHalf>(dy.Device, b.Device, s, alpha, ds, db);
        Kernels.Lora.Lora.BackwardDa<DeviceHalf>(ds, x.Device, dropout, da);

        var eds = new double[m * r];
        var eda = new double[r * k];
        var edb = new double[n * r];
        var edx = new double[m * k];
        LoraReference.Backward(dy.Host, x.Host, w.Host, a.Host, b.Host, m, k, n, r, alpha, dropout, eds, eda, edb, edx);
        foreach (var (name, t, e) in new[] { ("dS", ds, eds), ("dB", db, edb), ("dA", da, eda) })
        {
            var got = t.ToArray();
            Poison.AssertAllWritten<float>(got, name, seed);
            Compare.Close(got, e, Compare.F32, $"{name} m={m} r={r} p={p}", seed);
        }

        // Deterministic: a second run gives the same bits.
        var first = (db.ToArray(), da.ToArray());
        Kernels.Lora.Lora.BackwardDsDb<DeviceHalf>(dy.Device, b.Device, s, alpha, ds, db);
        Kernels.Lora.Lora.BackwardDa<DeviceHalf>(ds, x.Device, dropout, da);
        Compare.Exact<float>(db.ToArray(), first.Item1, "dB rerun", seed);
        Compare.Exact<float>(da.ToArray(), first.Item2, "dA rerun", seed);
    }
}
