using Kernels.Optimizers;
using Kernels.Quantization;
using Kernels.Tensors;
using Kernels.Tests.Harness;
using Xunit;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Tests.Optimizers;

/// <summary>The non-finite policy, the signed-map drift fix and stochastic rounding.</summary>
public class PolicyTests
{
    [Theory]
    [InlineData(OptimizerKind.AdamW)]
    [InlineData(OptimizerKind.Momentum)]
    [InlineData(OptimizerKind.RMSprop)]
    public void NonFiniteGradientsSkipTheirElementsAndNeverPoisonAState(OptimizerKind kind)
    {
        var seed = Seeded.Create();
        var device = Devices.CpuSmall;
        const int n = 4096 + 50;
        var settings = OptimizerProblem.Settings(kind, weightDecay: 0.01f);
        var p0 = seed.Normal(n, 0.1f);
        using var p = device.Upload<float>(p0, n);
        using var g = device.Allocate<float>(n);
        using var skipped = device.Upload<int>(new int[1], 1);
        using var state = Optimizer8BitState.Create(device, kind, n);
        var options = new OptimizerStepOptions { SkippedCount = skipped.Span };
        var refState = state.Export();
        var refP = (float[])p0.Clone();
        int expectedSkipped = 0;
        for (int t = 1; t <= 3; t++)
        {
            var grad = seed.Normal(n, 0.01f);
            if (t >= 2)
            {
                // NaN, ±Inf and a finite gradient whose square overflows f32, in the first and the last block.
                int[] bad = [3, 100, 257, 4000, n - 1];
                grad[3] = float.NaN;
                grad[100] = float.PositiveInfinity;
                grad[257] = float.NegativeInfinity;
                grad[4000] = 1e30f;
                grad[n - 1] = float.NaN;
                // RMSprop and AdamW square g: 1e30 overflows; Momentum does not square, so 1e30 is a legal update there.
                expectedSkipped += kind == OptimizerKind.Momentum ? bad.Length - 1 : bad.Length;
            }
            var before = p.ToArray();
            g.CopyFrom(grad);
            Optimizer8Bit.Step<float, float>(g, state, settings, t, p, options);
            Optimizer8BitReference.Step<float, float>(grad, refState, settings, t, refP);
            var after = p.ToArray();
            if (t >= 2)
                foreach (int i in new[] { 3, 100, 257, n - 1 })
                    Assert.True(before[i].Equals(after[i]), $"{kind}: skipped element {i} changed {seed.Tag}");
        }
        Assert.Equal(expectedSkipped, skipped.ToArray()[0]);
        var snapshot = state.Export();
        KernelVsReferenceTests.AssertStatesEqual(snapshot, refState, seed);
        Compare.Exact<float>(p.ToArray(), refP, "parameters", seed);
        for (int s = 0; s < snapshot.StateCount; s++)
        {
            Assert.All(snapshot.Absmax![s], a => Assert.True(float.IsFinite(a) && a > 0, $"absmax {a} {seed.Tag}"));
            for (int i = 0; i < n; i++) Assert.True(float.IsFinite(snapshot.Dequantize(s, i)), $"state {s}[{i}] {seed.Tag}");
        }
        Poison.AssertAllWritten<float>(p.ToArray(), "parameters", seed);
    }

    /// <summary>
    /// With β = 1 and zero gradients a state must stay put while it is requantized every step. bitsandbytes' scale
    /// (absmax) maps a negative extreme to −0.99296874 and so shrinks the block by 0.7 % per step (0.993^100 ≈ 0.49);
    /// the negative-extreme scale keeps it (here: within 1e-5 after 100 requantizations).
    /// </summary>
    [Theory]
    [InlineData(OptimizerKind.Momentum, -1f)]
    [InlineData(OptimizerKind.Momentum, 1f)]
    [InlineData(OptimizerKind.Adam, -1f)]
    [InlineData(OptimizerKind.Lion, -1f)]
    public void BlockExtremesDoNotDriftWithoutGradientSignal(OptimizerKind kind, float extremeSign)
    {
        Assert.Equal(-0.99296874f, CodeBook.DynamicSigned.Values[0]); // the asymmetry being fixed
        var seed = Seeded.Create();
        var device = Devices.CpuSmall;
        const int n = 300; // one full block and a partial one
        using var p = device.Upload<float>(new float[n], n);
        using var g = device.Allocate<float>(n);
        using var state = Optimizer8BitState.Create(device, kind, n, minQuantizedLength: 0);
        var first = seed.Uniform(n, -0.5f, 0.5f);
        first[17] = extremeSign * 2f;      // the extreme of block 0
        first[280] = extremeSign * 0.75f;  // the extreme of block 1
        // Step 1 loads the state (Lion: m = (1 − β2)·g, so use β2 = 0 once); then β = 1, lr = 0, g = 0.
        var load = kind == OptimizerKind.Lion ? new OptimizerSettings(0f, 0f, 0f) : new OptimizerSettings(0f, 0f, 0f, 1f);
        g.CopyFrom(first);
        Optimizer8Bit.Step<float, float>(g, state, load, 1, p);
        var initial = state.Export();
        float extreme0 = initial.Dequantize(0, 17), extreme1 = initial.Dequantize(0, 280);
        Assert.Equal(extremeSign * 2f, extreme0, 1e-5f);
        g.CopyFrom(new float[n]);
        var hold = new OptimizerSettings(0f, 1f, 1f, 1f);
        for (int t = 2; t <= 101; t++) Optimizer8Bit.Step<float, float>(g, state, hold, t, p);
        var final = state.Export();
        Assert.True(Math.Abs(final.Dequantize(0, 17) / extreme0 - 1) < 1e-5,
            $"{kind}: block 0 extreme {extreme0} became {final.Dequantize(0, 17)} {seed.Tag}");
        Assert.True(Math.Abs(final.Dequantize(0, 280) / extreme1 - 1) < 1e-5,
            $"{kind}: block 1 extreme {extreme1} became {final.Dequantize(0, 280)} {seed.Tag}");
        // Every other element also holds its (already quantized) value.
        for (int i = 0; i < n; i++)
            Assert.True(Math.Abs(final.Dequantize(0, i) - initial.Dequantize(0, i)) <= 1e-5f * Math.Abs(extreme0),
                $"{kind}: element {i} moved from {initial.Dequantize(0, i)} to {final.Dequantize(0, i)} {seed.Tag}");
    }

    [Fact]
    public void StochasticRoundingMatchesTheReferenceForBf16AndF16()
    {
        KernelVsReferenceTests.Run<BFloat16, float>(OptimizerKind.AdamW, 4500, 256, steps: 2, weightDecay: 0.01f,
            stochasticSeed: 12345);
        KernelVsReferenceTests.Run<DeviceHalf, DeviceHalf>(OptimizerKind.Momentum, 4500, 256, steps: 2, weightDecay: 0f,
            stochasticSeed: 777);
    }

    /// <summary>
    /// An update of 1e-3 on bf16 parameters equal to 1 is below half an ulp: round-to-nearest loses it, stochastic
    /// rounding keeps it on average (P(down to 0.99609375) = 0.001 / 2^-8 = 0.256).
    /// </summary>
    [Fact]
    public void StochasticRoundingKeepsSubUlpUpdatesOnAverage()
    {
        var device = Devices.CpuSmall;
        const int n = 4096;
        var ones = OptimizerProblem.Convert<BFloat16>(Enumerable.Repeat(1f, n).ToArray());
        using var g = device.Upload<BFloat16>(ones, n);
        var settings = new OptimizerSettings(1e-3f, 0.9f);
        float Mean(ulong? seed)
        {
            using var p = device.Upload<BFloat16>(ones, n);
            using var state = Optimizer8BitState.Create(device, OptimizerKind.Momentum, n);
            Optimizer8Bit.Step<BFloat16, BFloat16>(g, state, settings, 1, p, new OptimizerStepOptions { StochasticRoundingSeed = seed });
            return (float)OptimizerProblem.Widen(p.ToArray()).Average();
        }
        Assert.Equal(1f, Mean(null));
        float mean = Mean(42);
        Assert.True(Math.Abs(mean - 0.999f) < 2e-4f, $"mean {mean} vs expected 0.999 (σ of the mean ≈ 2.7e-5)");
        Assert.Equal(mean, Mean(42)); // reproducible
        Assert.NotEqual(mean, Mean(43));
    }
}
