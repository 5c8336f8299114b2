using Kernels.Optimizers;
using Kernels.Tensors;
using Kernels.Tests.Harness;
using Xunit;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Tests.Optimizers;

/// <summary>
/// bitsandbytes' step arguments <c>gnorm_scale</c> (<see cref="OptimizerStepOptions.GradientScale"/>) and
/// <c>percentile_clipping</c> (<see cref="PercentileClipping"/>): the kernels against the independent references, bit
/// for bit, and the clipping arithmetic against hand-computed facts.
/// </summary>
public class ClippingTests
{
    [Theory]
    [InlineData(OptimizerKind.Adam, 0.37f, 4096 + 333)]
    [InlineData(OptimizerKind.Momentum, 2.5f, 4096 + 333)]
    [InlineData(OptimizerKind.Momentum, 0.37f, 1000)] // f32 states (Lion would not notice: sign(c) is scale-free)
    public void GradientScaleMultipliesEveryGradient(OptimizerKind kind, float gradientScale, int n)
    {
        var seed = Seeded.Create();
        var device = Devices.CpuSmall;
        var settings = OptimizerProblem.Settings(kind, 0.01f);
        var p0 = seed.Normal(n, 0.1f);
        using var p = device.Upload<float>(p0, n);
        using var g = device.Allocate<float>(n);
        using var state = Optimizer8BitState.Create(device, kind, n);
        var refState = state.Export();
        var refP = (float[])p0.Clone();
        var unscaled = (float[])p0.Clone();
        var unscaledState = state.Export();
        for (int t = 1; t <= 3; t++)
        {
            var grad = seed.Normal(n, 0.01f);
            g.CopyFrom(grad);
            Optimizer8Bit.Step<float, float>(g, state, settings, t, p, new OptimizerStepOptions { GradientScale = gradientScale });
            Optimizer8BitReference.Step<float, float>(grad, refState, settings, t, refP, gradientScale: gradientScale);
            Optimizer8BitReference.Step<float, float>(grad, unscaledState, settings, t, unscaled);
        }
        Compare.Exact<float>(p.ToArray(), refP, "parameters", seed);
        KernelVsReferenceTests.AssertStatesEqual(state.Export(), refState, seed);
        Assert.False(refP.AsSpan().SequenceEqual(unscaled), $"the scale changed nothing {seed.Tag}");
    }

    /// <summary>
    /// Hand-computed: g = 0.5 on 4096 elements gives ‖g‖² = 1024 (every partial 64, all exact), so step 1 fills the
    /// history with 1024 and reports [1, 32, 32]; g = 1 at step 2 records 4096 in entry 2, the 5th-percentile entry is
    /// still 1024, so clip = 32, ‖g‖ = 64 and the scale is 0.5; a NaN gradient at step 3 records nothing and gives 0.
    /// </summary>
    [Fact]
    public void ClippingFollowsTheHistoryByHand()
    {
        var device = Devices.CpuSmall;
        const int n = 4096;
        using var clip = PercentileClipping.Create(device, n, percentile: 5);
        using var g = device.Allocate<float>(n);
        g.CopyFrom(Enumerable.Repeat(0.5f, n).ToArray());
        clip.Observe(g.ReadOnlySpan, 1);
        Assert.Equal([1f, 32f, 32f], clip.Result.ToArray());
        Assert.All(clip.History(), h => Assert.Equal(1024f, h));
        g.CopyFrom(Enumerable.Repeat(1f, n).ToArray());
        clip.Observe(g.ReadOnlySpan, 2);
        Assert.Equal([0.5f, 64f, 32f], clip.Result.ToArray());
        var history = clip.History();
        Assert.Equal(4096f, history[2]);
        Assert.Equal(99, history.Count(h => h == 1024f));
        var nan = Enumerable.Repeat(1f, n).ToArray();
        nan[7] = float.NaN;
        g.CopyFrom(nan);
        clip.Observe(g.ReadOnlySpan, 3);
        Assert.Equal(0f, clip.Result.ToArray()[0]);
        Assert.Equal(history, clip.History());
        // percentile 99 takes the largest entry: 4096 → clip 64, so a gradient of norm 64 is not clipped.
        using var top = PercentileClipping.Create(device, n, percentile: 99);
        g.CopyFrom(Enumerable.Repeat(0.5f, n).ToArray());
        top.Observe(g.ReadOnlySpan, 1);
        g.CopyFrom(Enumerable.Repeat(1f, n).ToArray());
        top.Observe(g.ReadOnlySpan, 2);
        Assert.Equal([1f, 64f, 64f], top.Result.ToArray());
    }

    [Theory]
    [InlineData(OptimizerKind.AdamW, 5, 4096 + 333, 256)]
    [InlineData(OptimizerKind.Momentum, 50, 4096 + 1000, 128)]
    [InlineData(OptimizerKind.RMSprop, 0, 777, 256)] // f32 states
    public void PercentileClippedStepsMatchTheReference(OptimizerKind kind, int percentile, int n, int blockSize)
    {
        var seed = Seeded.Create();
        var device = Devices.CpuSmall;
        var settings = OptimizerProblem.Settings(kind, 0.01f);
        var p0 = seed.Normal(n, 0.1f);
        using var p = device.Upload<float>(p0, n);
        using var g = device.Allocate<float>(n);
        using var state = Optimizer8BitState.Create(device, kind, n, blockSize);
        using var clip = PercentileClipping.Create(device, n, percentile, blockSize);
        var refClip = new PercentileClippingReference(percentile);
        var refState = state.Export();
        var refP = (float[])p0.Clone();
        const float userScale = 0.75f;
        var options = new OptimizerStepOptions { Clipping = clip, GradientScale = userScale };
        int clipped = 0;
        for (int t = 1; t <= 6; t++)
        {
            // Gradient magnitudes that rise and fall, so that some steps clip.
            var grad = seed.Normal(n, 0.01f * (1 + 2 * (t % 3)));
            g.CopyFrom(grad);
            clip.Observe(g.ReadOnlySpan, t);
            Optimizer8Bit.Step<float, float>(g, state, settings, t, p, options);
            var r = refClip.Observe(PercentileClippingReference.SquaredNormPartials(grad, blockSize), t);
            Compare.Exact<float>(clip.Result.ToArray(), [r.Scale, r.Norm, r.Clip], $"step {t} [scale, norm, clip]", seed);
            if (r.Scale < 1f) clipped++;
            Optimizer8BitReference.Step<float, float>(grad, refState, settings, t, refP, gradientScale: userScale * r.Scale);
        }
        Assert.True(clipped > 0, $"no step clipped {seed.Tag}");
        Compare.Exact<float>(clip.History(), refClip.History.ToArray(), "history", seed);
        Compare.Exact<float>(p.ToArray(), refP, "parameters", seed);
        KernelVsReferenceTests.AssertStatesEqual(state.Export(), refState, seed);
    }

    /// <summary>A shard starting at a block boundary writes exactly the whole gradient's partials of its blocks, for every gradient type.</summary>
    [Fact]
    public void ShardPartialsAreTheWholeParametersPartials()
    {
        var seed = Seeded.Create();
        var device = Devices.CpuSmall;
        const int n = 3000, b = 128, cut = 11 * b;
        var x = seed.Normal(n, 0.3f);
        using var f = device.Upload<float>(x, n);
        using var h = device.Upload<DeviceHalf>(OptimizerProblem.Convert<DeviceHalf>(x), n);
        using var bf = device.Upload<BFloat16>(OptimizerProblem.Convert<BFloat16>(x), n);
        int blocks = (n + b - 1) / b;
        using var whole = device.Allocate<float>(blocks);
        using var shard = device.Allocate<float>(blocks);
        void Check<T>(DeviceTensor<T> t, float[] widened) where T : unmanaged
        {
            PercentileClipping.SquaredNormPartials(t.ReadOnlySpan, b, whole.Span);
            PercentileClipping.SquaredNormPartials(t.ReadOnlySpan.Slice(0..cut), b, shard.Span.Slice(0..11));
            PercentileClipping.SquaredNormPartials(t.ReadOnlySpan.Slice(cut..), b, shard.Span.Slice(11..));
            var expected = PercentileClippingReference.SquaredNormPartials(widened, b);
            Compare.Exact<float>(whole.ToArray(), expected, $"{typeof(T).Name} whole", seed);
            Compare.Exact<float>(shard.ToArray(), expected, $"{typeof(T).Name} shards", seed);
        }
        Check(f, x);
        Check(h, OptimizerProblem.Widen(OptimizerProblem.Convert<DeviceHalf>(x)));
        Check(bf, OptimizerProblem.Widen(OptimizerProblem.Convert<BFloat16>(x)));
    }

    [Fact]
    public void BadArgumentsThrowAndWriteNothing()
    {
        var device = Devices.CpuSmall;
        const int n = 4200;
        Assert.Throws<ArgumentOutOfRangeException>(() => PercentileClipping.Create(device, n, percentile: 100));
        Assert.Throws<ArgumentOutOfRangeException>(() => PercentileClipping.Create(device, n, percentile: -1));
        Assert.Throws<ArgumentOutOfRangeException>(() => PercentileClipping.Create(device, 0));
        using var clip = PercentileClipping.Create(device, n);
        using var g = device.Upload<float>(Enumerable.Repeat(1f, n).ToArray(), n);
        using var p = device.Upload<float>(new float[n], n);
        using var shortPartials = device.Allocate<float>(3);
        Assert.Throws<ArgumentException>(() => clip.ObservePartials(shortPartials.ReadOnlySpan, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => clip.Observe(g.ReadOnlySpan, 0));
        // One element short: the same number of 256-blocks, so only the length check can catch it.
        using var shortGradients = device.Upload<float>(Enumerable.Repeat(1f, n - 1).ToArray(), n - 1);
        Assert.Equal("gradients", Assert.Throws<ArgumentException>(() => clip.Observe(shortGradients.ReadOnlySpan, 1)).ParamName);
        Assert.All(clip.History(), h => Assert.Equal(0f, h));
        using var both = device.Allocate<float>(n);
        Assert.Equal("partials", Assert.Throws<ArgumentException>(() =>
            PercentileClipping.SquaredNormPartials<float>(both.ReadOnlySpan, 256, both.Span.Slice(0..17))).ParamName);
        using var state = Optimizer8BitState.Create(device, OptimizerKind.Adam, n);
        var settings = OptimizerProblem.Settings(OptimizerKind.Adam);
        foreach (var bad in new[] { float.NaN, -1f, float.PositiveInfinity })
            Assert.Throws<ArgumentOutOfRangeException>(() =>
                Optimizer8Bit.Step<float, float>(g, state, settings, 1, p, new OptimizerStepOptions { GradientScale = bad }));
        Assert.All(p.ToArray(), x => Assert.Equal(0f, x));
        var other = Devices.CpuWarp32;
        using var otherClip = PercentileClipping.Create(other, n);
        Assert.Throws<ArgumentException>(() =>
            Optimizer8Bit.Step<float, float>(g, state, settings, 1, p, new OptimizerStepOptions { Clipping = otherClip }));
        Assert.All(p.ToArray(), x => Assert.Equal(0f, x));
    }
}
