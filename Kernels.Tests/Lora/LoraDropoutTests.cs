using Kernels.Lora;
using Kernels.Tests.Harness;
using Xunit;

namespace Kernels.Tests.Lora;

/// <summary>The dropout mask: its statistics, and that the forward and the backward kernels apply the same mask.</summary>
public class LoraDropoutTests
{
    [Fact]
    public void KeepsAboutOneMinusPAndDependsOnSeedAndOffset()
    {
        var d = new LoraDropout(0.1f, 1234, 5);
        int kept = 0;
        const int count = 200_000;
        for (long e = 0; e < count; e++) if (d.Keeps(e)) kept++;
        Assert.InRange(kept / (double)count, 0.897, 0.903);
        var other = new LoraDropout(0.1f, 1234, 6);
        int same = 0;
        for (long e = 0; e < 1000; e++) if (d.Keeps(e) == other.Keeps(e)) same++;
        Assert.InRange(same, 780, 860); // independent masks agree on ≈ 0.9² + 0.1² = 82 %
        Assert.Equal(1f, default(LoraDropout).Factor(7));
        Assert.False(default(LoraDropout).Active);
        Assert.Equal(2f, new LoraDropout(0.5f, 1).KeepScale);
    }

    /// <summary>
    /// Reads the mask back out of the shrink (forward) and dA (backward) kernels with identity operands, M = r = K = 8:
    /// X = 1 and A = I give S = drop(X); dY = I, B = I, α = 1 give dS = I and so dA = drop(X). Both must equal the host
    /// mask exactly.
    /// </summary>
    [Fact]
    public void ForwardAndBackwardKernelsApplyTheSameMask()
    {
        var seed = Seeded.Create();
        var device = Devices.CpuSmall;
        const int size = 8;
        var dropout = new LoraDropout(0.5f, (ulong)seed.Random.NextInt64(), 3);
        var identity = new float[size * size];
        for (int i = 0; i < size; i++) identity[i * size + i] = 1f;
        using var x = device.Upload<float>(Enumerable.Repeat(1f, size * size).ToArray(), size, size);
        using var eye = device.Upload<float>(identity, size, size);
        using var s = LoraTestData.Poisoned(device, size, size);
        Kernels.Lora.Lora.Shrink<float>(x, eye, dropout, s);
        using var ds = LoraTestData.Poisoned(device, size, size);
        using var db = LoraTestData.Poisoned(device, size, size);
        using var da = LoraTestData.Poisoned(device, size, size);
        Kernels.Lora.Lora.BackwardDsDb<float>(eye, eye, s, 1f, ds, db);
        Kernels.Lora.Lora.BackwardDa<float>(ds, x, dropout, da);

        var expected = new float[size * size];
        for (int e = 0; e < expected.Length; e++) expected[e] = dropout.Keeps(e) ? 2f : 0f;
        Assert.Contains(0f, expected);
        Assert.Contains(2f, expected);
        Compare.Exact<float>(s.ToArray(), expected, "forward (shrink) mask", seed);
        Compare.Exact<float>(da.ToArray(), expected, "backward (dA) mask", seed);
        Compare.Exact<float>(ds.ToArray(), identity, "dS = I", seed);
    }
}
