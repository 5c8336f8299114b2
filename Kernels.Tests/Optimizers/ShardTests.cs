using Kernels.Optimizers;
using Kernels.Tensors;
using Kernels.Tests.Harness;
using Xunit;

namespace Kernels.Tests.Optimizers;

/// <summary>
/// ZeRO-style shards: a parameter split at block boundaries, each shard stepped with its own state
/// (<see cref="Optimizer8BitState.CreateShard"/>), gives exactly the bits of the unsharded step — parameters (with
/// stochastic rounding keyed on the whole parameter's indices), codes and scales — and percentile clipping fed with the
/// gathered shard partials gives the whole's scale.
/// </summary>
public class ShardTests
{
    [Theory]
    [InlineData(OptimizerKind.AdamW, 5000, 256, new[] { 0, 1280, 3072 })]
    [InlineData(OptimizerKind.Lion, 3000, 128, new[] { 0, 1024, 2048 })] // under 4096: every shard keeps f32 states
    public void ShardsStepToTheBitsOfTheWhole(OptimizerKind kind, int n, int blockSize, int[] starts)
    {
        var seed = Seeded.Create();
        var device = Devices.CpuSmall;
        var settings = OptimizerProblem.Settings(kind, 0.01f);
        var p0 = OptimizerProblem.Convert<BFloat16>(seed.Normal(n, 0.1f));
        using var whole = OptimizerProblem.Upload(device, p0);
        using var sharded = OptimizerProblem.Upload(device, p0);
        using var g = device.Allocate<float>(n);
        using var wholeState = Optimizer8BitState.Create(device, kind, n, blockSize);
        var bounds = starts.Append(n).ToArray();
        var shardStates = starts.Select((s, i) => Optimizer8BitState.CreateShard(device, kind, n, s, bounds[i + 1] - s, blockSize)).ToArray();
        using var wholeClip = PercentileClipping.Create(device, n, 5, blockSize);
        using var shardClip = PercentileClipping.Create(device, n, 5, blockSize);
        using var gathered = device.Allocate<float>((nint)wholeClip.BlockCount);
        const ulong rounding = 1234;
        try
        {
            Assert.All(shardStates, s => Assert.Equal(wholeState.IsQuantized, s.IsQuantized));
            for (int t = 1; t <= 4; t++)
            {
                g.CopyFrom(seed.Normal(n, 0.01f * (1 + 2 * (t % 2))));
                wholeClip.Observe(g.ReadOnlySpan, t);
                Optimizer8Bit.Step<BFloat16, float>(g, wholeState, settings, t, whole,
                    new OptimizerStepOptions { Clipping = wholeClip, GradientScale = 0.5f, StochasticRoundingSeed = rounding });
                for (int i = 0; i < starts.Length; i++)
                {
                    int a = starts[i], b = bounds[i + 1];
                    PercentileClipping.SquaredNormPartials(g.ReadOnlySpan.Slice(a..b), blockSize,
                        gathered.Span.Slice((a / blockSize)..((b + blockSize - 1) / blockSize)));
                }
                shardClip.ObservePartials(gathered.ReadOnlySpan, t);
                for (int i = 0; i < starts.Length; i++)
                {
                    int a = starts[i], b = bounds[i + 1];
                    Optimizer8Bit.Step<BFloat16, float>(g.ReadOnlySpan.Slice(a..b), shardStates[i], settings, t, sharded.Span.Slice(a..b),
                        new OptimizerStepOptions { Clipping = shardClip, GradientScale = 0.5f, StochasticRoundingSeed = rounding, ElementOffset = a });
                }
                Compare.Exact<float>(shardClip.Result.ToArray(), wholeClip.Result.ToArray(), $"step {t} clipping", seed);
            }
            Compare.Exact<BFloat16>(sharded.ToArray(), whole.ToArray(), "parameters", seed);
            var wholeSnapshot = wholeState.Export();
            for (int i = 0; i < starts.Length; i++)
                KernelVsReferenceTests.AssertStatesEqual(shardStates[i].Export(),
                    wholeSnapshot.Slice(starts[i], bounds[i + 1] - starts[i]), seed);
        }
        finally
        {
            foreach (var s in shardStates) s.Dispose();
        }
    }

    [Fact]
    public void MisalignedShardsAndOffsetsAreRejected()
    {
        var device = Devices.CpuSmall;
        Assert.Throws<ArgumentOutOfRangeException>(() => Optimizer8BitState.CreateShard(device, OptimizerKind.Adam, 5000, 100, 256));
        Assert.Throws<ArgumentOutOfRangeException>(() => Optimizer8BitState.CreateShard(device, OptimizerKind.Adam, 5000, 256, 300));
        Assert.Throws<ArgumentOutOfRangeException>(() => Optimizer8BitState.CreateShard(device, OptimizerKind.Adam, 5000, 4864, 200));
        using var shard = Optimizer8BitState.CreateShard(device, OptimizerKind.Adam, 5000, 4864, 136);
        using var p = device.Allocate<float>(136);
        using var g = device.Allocate<float>(136);
        p.Span.Clear();
        g.Span.Clear();
        Assert.Throws<ArgumentException>(() => Optimizer8Bit.Step<float, float>(g, shard, OptimizerProblem.Settings(OptimizerKind.Adam), 1, p));
    }
}
