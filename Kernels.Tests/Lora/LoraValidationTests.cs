using Kernels.Lora;
using Kernels.Tests.Harness;
using Xunit;

namespace Kernels.Tests.Lora;

/// <summary>Bad input is rejected before anything is launched, and destinations stay untouched.</summary>
public class LoraValidationTests
{
    [Fact]
    public void ShrinkRejectsRankMismatch()
    {
        var device = Devices.CpuSmall;
        using var x = device.Upload<float>(new float[4 * 6], 4, 6);
        using var a = device.Upload<float>(new float[3 * 7], 3, 7);
        using var s = LoraTestData.Poisoned(device, 4, 3);
        var before = s.ToArray();
        Assert.Throws<ArgumentException>(() => Kernels.Lora.Lora.Shrink<float>(x, a, default, s));
        using var s2 = LoraTestData.Poisoned(device, 4, 2);
        using var a2 = device.Upload<float>(new float[3 * 6], 3, 6);
        var ex = Assert.Throws<ArgumentException>(() => Kernels.Lora.Lora.Shrink<float>(x, a2, default, s2));
        Assert.Contains("s", ex.ParamName);
        Poison.AssertUnchanged(s, before, "S");
    }

    [Fact]
    public void BackwardRejectsMismatchedShapes()
    {
        var device = Devices.CpuSmall;
        using var dy = device.Upload<float>(new float[4 * 5], 4, 5);
        using var b = device.Upload<float>(new float[5 * 3], 5, 3);
        using var s = device.Upload<float>(new float[4 * 2], 4, 2);
        using var ds = LoraTestData.Poisoned(device, 4, 3);
        using var db = LoraTestData.Poisoned(device, 5, 3);
        var beforeDs = ds.ToArray();
        var beforeDb = db.ToArray();
        Assert.Throws<ArgumentException>(() => Kernels.Lora.Lora.BackwardDsDb<float>(dy, b, s, 1f, ds, db));
        Poison.AssertUnchanged(ds, beforeDs, "dS");
        Poison.AssertUnchanged(db, beforeDb, "dB");

        using var x = device.Upload<float>(new float[4 * 2], 4, 2);
        using var da = LoraTestData.Poisoned(device, 3, 2);
        var beforeDa = da.ToArray();
        Assert.Throws<ArgumentException>(() => Kernels.Lora.Lora.BackwardDa<float>(s, x, default, da)); // dS rank 2, dA rank 3
        Poison.AssertUnchanged(da, beforeDa, "dA");
    }

    [Fact]
    public void BatchRejectsBadSegments()
    {
        var device = Devices.CpuSmall;
        Assert.Throws<ArgumentException>(() => LoraBatch.FromSegments(device, [0, 3, 2], [0, 1]));   // out of order
        Assert.Throws<ArgumentException>(() => LoraBatch.FromSegments(device, [1, 3], [0]));         // not starting at 0
        Assert.Throws<ArgumentException>(() => LoraBatch.FromSegments(device, [0, 3], [0, 1]));      // count mismatch
        Assert.Throws<ArgumentOutOfRangeException>(() => LoraBatch.FromSegments(device, [0, 3], [-2]));
        Assert.Throws<ArgumentOutOfRangeException>(() => LoraBatch.FromTokens(device, [0, -3]));
        Assert.Throws<ArgumentException>(() => LoraBatch.FromTokens(device, []));
    }

    [Fact]
    public void BgmvRejectsUnknownAdapterAndRowMismatch()
    {
        var seed = Seeded.Create();
        var device = Devices.CpuSmall;
        var (typed, _) = LoraTestData.Adapters<float>(seed, 4, 3, 2, 2);
        using var set = LoraAdapterSet<float>.Create(device, 4, 3, typed);
        using var x = device.Upload<float>(new float[3 * 4], 3, 4);
        using var y = LoraTestData.Poisoned(device, 3, 3);
        var before = y.ToArray();
        using var unknown = LoraBatch.FromTokens(device, [0, 2, -1]);            // id 2 of 2 adapters
        Assert.Throws<ArgumentOutOfRangeException>(() => Kernels.Lora.Lora.Bgmv<float>(x, set, unknown, y));
        using var shortBatch = LoraBatch.FromSegments(device, [0, 2], [1]);   // covers 2 of 3 rows
        Assert.Throws<ArgumentException>(() => Kernels.Lora.Lora.Bgmv<float>(x, set, shortBatch, y));
        using var wrongK = device.Upload<float>(new float[3 * 5], 3, 5);
        using var ok = LoraBatch.FromTokens(device, [0, 1, -1]);
        Assert.Throws<ArgumentException>(() => Kernels.Lora.Lora.Bgmv<float>(wrongK, set, ok, y));
        Poison.AssertUnchanged(y, before, "y");
    }

    [Fact]
    public void AdapterSetAndDropoutRejectBadValues()
    {
        var device = Devices.CpuSmall;
        Assert.Throws<ArgumentOutOfRangeException>(() => LoraAdapterSet<float>.Create(device, 4, 3, [new LoraAdapter<float>(0, 1f, [], [])]));
        Assert.Throws<ArgumentOutOfRangeException>(() =>
            LoraAdapterSet<float>.Create(device, 1, 1, [new LoraAdapter<float>(129, 1f, new float[129], new float[129])]));
        Assert.Throws<ArgumentException>(() => LoraAdapterSet<float>.Create(device, 4, 3, [new LoraAdapter<float>(2, 1f, new float[7], new float[6])]));
        Assert.Throws<ArgumentException>(() => LoraAdapterSet<float>.Create(device, 4, 3, [new LoraAdapter<float>(2, float.NaN, new float[8], new float[6])]));
        Assert.Throws<ArgumentException>(() => LoraAdapterSet<float>.Create(device, 4, 3, []));
        Assert.Throws<ArgumentOutOfRangeException>(() => new LoraDropout(1f, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new LoraDropout(-0.1f, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new LoraDropout(float.NaN, 1));
    }
}
