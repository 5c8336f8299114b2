using Kernels.Dense;
using Kernels.Engine;
using Kernels.Runtime;
using Kernels.Tensors;
using Kernels.Tests.Harness;
using Xunit;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Tests.Engine;

/// <summary>
/// <see cref="DenseWeightProducer"/> behind a test-assembly type, so the engine can store f32 results (a library-only
/// specialization must be in the catalog, and the catalog's dense products store 16-bit values).
/// </summary>
public readonly struct CopyTestProducer : IWeightTileProducer
{
    private readonly DenseWeightProducer inner;

    public CopyTestProducer(Matrix16 weights) => inner = new DenseWeightProducer(weights);

    public bool HasEndPhase => false;

    public void Begin(in WeightTileRequest request) => inner.Begin(request);

    public void End(in WeightTileRequest request) { }
}

/// <summary>
/// The multistage pipeline at the K lengths where a ring of <see cref="ITileShape.Stages"/> buffers can go wrong:
/// fewer K tiles than stages (the prologue's empty commit groups), one K tile, K not a multiple of 64 (a partial
/// last tile) or of 8 (16-bit loads instead of <c>cp.async</c>), enough tiles to wrap the ring more than once, and
/// split-K with splits shorter than the pipeline. Both producer kinds: the dense <c>cp.async</c> producer (its tiles
/// run stages − 1 ahead) and an End-phase producer (one ahead). Every result against the f64 reference.
/// </summary>
public class PipelineTests
{
    private static void Check<TShape>(int m, int k, int n, int splits, bool endPhase) where TShape : struct, ITileShape
    {
        var device = Devices.CpuWarp32;
        var seed = Seeded.Create();
        var wh = ElementTypes.FromFloat<DeviceHalf>(seed.Normal((long)m * k, 0.5f));
        var xh = ElementTypes.FromFloat<DeviceHalf>(seed.Normal((long)n * k));
        using var w = device.Upload<DeviceHalf>(wh, m, k);
        using var x = device.Upload<DeviceHalf>(xh, n, k);
        using var y = device.Allocate<float>(n, m);
        Poison.Fill(y);
        var final = new StoreEpilogue<float, F32>(y.Span.View.AsContiguous(), null, m);
        var problem = GemmProblem.Create<TShape>(m, n, k, splits);
        var activations = Matrix16.From<DeviceHalf>(x);
        if (endPhase)
            TileEngine.Run<TShape, F16Mma, ScatterTestProducer, StoreEpilogue<float, F32>>(device,
                new ScatterTestProducer(w.Span.View.AsContiguous().Cast<ushort>(), m, k), activations, final, problem);
        else
            TileEngine.Run<TShape, F16Mma, CopyTestProducer, StoreEpilogue<float, F32>>(device,
                new CopyTestProducer(Matrix16.From<DeviceHalf>(w)), activations, final, problem);
        var got = y.ToArray();
        string what = $"{(endPhase ? "End-phase" : "dense")} producer, {typeof(TShape).Name} ({default(TShape).Stages} stages) " +
                      $"M={m} K={k} ({problem.KTiles} K tiles) N={n} splits={problem.Splits} ({problem.KTilesPerSplit} tiles each)";
        Poison.AssertAllWritten<float>(got, what, seed);
        Compare.Close(got, DenseReference.GemmExact<DeviceHalf>(xh, wh, default, n, k, m), 1e-5, what, seed);
    }

    [Fact]
    public void ShapesHaveAtLeastThreeStagesAndFitTheirSharedMemory()
    {
        // The ring needs stages ≥ 3 for wait_group(stages − 2) to leave a copy in flight; the bytes are the catalog's.
        Assert.Equal(3, default(SkinnyTile).Stages);
        Assert.Equal(4, default(WideTile).Stages);
        Assert.Equal(4, default(LargeTile).Stages);
        Assert.Equal(3 * (128 + 16) * 128, TileShapes.SharedBytes<SkinnyTile>());
        Assert.Equal(4 * (64 + 32) * 128, TileShapes.SharedBytes<WideTile>());
        Assert.Equal(4 * (128 + 64) * 128, TileShapes.SharedBytes<LargeTile>());
    }

    // One K tile, partial: only the prologue's first slot holds data.
    [Fact]
    public void OneKTileSkinny() => Check<SkinnyTile>(130, 40, 5, 1, endPhase: false);

    [Fact]
    public void OneKTileLargeEndPhase() => Check<LargeTile>(70, 24, 66, 1, endPhase: true);

    // Two K tiles, fewer than the stages; K % 8 ≠ 0 takes the 16-bit loads.
    [Fact]
    public void FewerKTilesThanStagesWide() => Check<WideTile>(65, 100, 33, 1, endPhase: false);

    [Fact]
    public void FewerKTilesThanStagesSkinnyEndPhase() => Check<SkinnyTile>(129, 100, 3, 1, endPhase: true);

    // Exactly as many K tiles as the skinny ring has buffers, K a multiple of 8 (cp.async), last tile partial.
    [Fact]
    public void AsManyKTilesAsStagesSkinny() => Check<SkinnyTile>(129, 136, 16, 1, endPhase: false);

    // Eight K tiles: the ring wraps twice; K % 8 ≠ 0.
    [Fact]
    public void RingWrapsSkinny() => Check<SkinnyTile>(33, 460, 7, 1, endPhase: false);

    [Fact]
    public void RingWrapsLarge() => Check<LargeTile>(40, 456, 65, 1, endPhase: false);

    [Fact]
    public void RingWrapsWideEndPhase() => Check<WideTile>(70, 452, 20, 1, endPhase: true);

    // Split-K: every split shorter than the pipeline, the last one shorter still.
    [Fact]
    public void SplitsShorterThanThePipelineSkinny() => Check<SkinnyTile>(100, 330, 9, 3, endPhase: false);

    [Fact]
    public void SplitsShorterThanThePipelineWideEndPhase() => Check<WideTile>(64, 520, 17, 4, endPhase: true);

    [Fact]
    public void SplitsShorterThanThePipelineLarge() => Check<LargeTile>(50, 392, 40, 3, endPhase: false);
}

/// <summary>The pipeline's waits in the PTX a device loads: stages − 2 groups left in flight, never a full drain.</summary>
public class PipelinePtxTests
{
    private static string Engine<TShape>(Type producer) where TShape : struct, ITileShape =>
        Ptx.Compile(typeof(TileEngine).GetMethod(nameof(TileEngine.Kernel))!.MakeGenericMethod(
            typeof(TShape), typeof(F16Mma), producer, typeof(StoreEpilogue<DeviceHalf, F16>)));

    private static void WaitsFor<TShape>(Type producer) where TShape : struct, ITileShape
    {
        string ptx = Engine<TShape>(producer);
        int pending = default(TShape).Stages - 2;
        Assert.Contains($"cp.async.wait_group {pending};", ptx);
        for (int other = 0; other < 4; other++)
            if (other != pending) Assert.DoesNotContain($"cp.async.wait_group {other};", ptx);
    }

    [Fact]
    public void SkinnyDenseWaitsForAllButOneGroup() => WaitsFor<SkinnyTile>(typeof(DenseWeightProducer));

    [Fact]
    public void LargeDenseWaitsForAllButTwoGroups() => WaitsFor<LargeTile>(typeof(DenseWeightProducer));

    [Fact]
    public void WideEndPhaseProducerWaitsForAllButTwoGroups() => WaitsFor<WideTile>(typeof(Kernels.Sparse.TiledCslTileProducer));
}
