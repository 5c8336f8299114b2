using ILGPU;
using Kernels.Dense;
using Kernels.Engine;
using Kernels.Runtime;
using Kernels.Tensors;
using Kernels.Tests.Harness;
using Xunit;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Tests.Engine;

/// <summary>
/// A producer written only against the documented contract, in the way a sparse family would: zero the tile in
/// <c>Begin</c>, scatter the nonzeros to <see cref="WeightTileRequest.HalfIndex"/> in <c>End</c>.
/// </summary>
public readonly struct ScatterTestProducer : IWeightTileProducer
{
    public readonly ArrayView<ushort> Weights;
    public readonly int M;
    public readonly int K;

    public ScatterTestProducer(ArrayView<ushort> weights, int m, int k)
    {
        Weights = weights;
        M = m;
        K = k;
    }

    public bool HasEndPhase => true;

    public void Begin(in WeightTileRequest request)
    {
        int start = request.TileByteOffset >> 2;
        for (int i = request.Thread; i < request.Rows * 32; i += TileEngineConstants.Threads) request.Shared[start + i] = 0u;
    }

    public void End(in WeightTileRequest request)
    {
        var halves = request.Shared.Cast<ushort>();
        for (int e = request.Thread; e < request.Rows * 64; e += TileEngineConstants.Threads)
        {
            int r = e >> 6, c = e & 63;
            int row = request.Row0 + r, col = request.K0 + c;
            if (row < M && col < K)
            {
                ushort v = Weights[(long)row * K + col];
                if (v != 0) halves[request.HalfIndex(r, c)] = v;
            }
        }
    }
}

public class EngineContractTests
{
    private static void Check<TShape>(int m, int k, int n, int splits) where TShape : struct, ITileShape
    {
        var device = Devices.CpuWarp32;
        var seed = Seeded.Create();
        var wf = seed.Normal((long)m * k);
        for (int i = 0; i < wf.Length; i++) if (seed.Random.NextDouble() < 0.6) wf[i] = 0f; // mostly zeros, like a pruned weight
        var wh = ElementTypes.FromFloat<DeviceHalf>(wf);
        var xh = ElementTypes.FromFloat<DeviceHalf>(seed.Normal((long)n * k));
        using var w = device.Upload<DeviceHalf>(wh, m, k);
        using var x = device.Upload<DeviceHalf>(xh, n, k);
        using var y = device.Allocate<float>(n, m);
        Poison.Fill(y);
        var producer = new ScatterTestProducer(w.Span.View.AsContiguous().Cast<ushort>(), m, k);
        var final = new StoreEpilogue<float, F32>(y.Span.View.AsContiguous(), null, m);
        var problem = GemmProblem.Create<TShape>(m, n, k, splits);
        var activations = Matrix16.From<DeviceHalf>(x);
        if (problem.Splits == 1)
        {
            TileEngine.Launch<TShape, F16Mma, ScatterTestProducer, StoreEpilogue<float, F32>>(device, producer, activations, final, problem);
        }
        else
        {
            TileEngine.Run<TShape, F16Mma, ScatterTestProducer, StoreEpilogue<float, F32>>(device, producer, activations, final, problem);
        }
        var got = y.ToArray();
        string what = $"engine with a scatter producer, {typeof(TShape).Name} M={m} K={k} N={n} splits={problem.Splits}";
        Poison.AssertAllWritten<float>(got, what, seed);
        Compare.Close(got, DenseReference.GemmExact<DeviceHalf>(xh, wh, default, n, k, m), 1e-5, what, seed);
    }

    [Fact]
    public void EndPhaseProducerSkinnyTile() => Check<SkinnyTile>(129, 72, 3, 1);

    [Fact]
    public void EndPhaseProducerWideTileWithSplitK() => Check<WideTile>(70, 130, 20, 2);

    [Fact]
    public void SwizzleIsTiledCslLocation()
    {
        // Flash-LLM: loc = r·64 + (c XOR ((r & 7) << 3)) for r < 128, c < 64; a bijection on the 8192 halves of a tile
        // that keeps each 8-half chunk contiguous.
        var seen = new bool[128 * 64];
        for (int r = 0; r < 128; r++)
            for (int c = 0; c < 64; c++)
            {
                int loc = SwizzledTile.HalfIndex(r, c);
                Assert.Equal(r * 64 + (c ^ ((r & 7) << 3)), loc);
                Assert.False(seen[loc]);
                seen[loc] = true;
                Assert.Equal(SwizzledTile.ChunkByteOffset(r, c / 8) / 2 + c % 8, loc);
            }
    }

    [Fact]
    public void LdmatrixPhasesAreBankConflictFree()
    {
        // An ldmatrix phase reads 8 rows × 16 bytes at one logical chunk; a conflict-free phase touches 8 distinct
        // 16-byte bank groups (32 banks × 4 bytes = 8 groups per 128 bytes).
        for (int row0 = 0; row0 < 128; row0 += 8)
            for (int chunk = 0; chunk < 8; chunk++)
            {
                var groups = Enumerable.Range(row0, 8).Select(r => (SwizzledTile.ChunkByteOffset(r, chunk) / 16) % 8).Distinct().Count();
                Assert.Equal(8, groups);
            }
    }

    [Fact]
    public void ProblemPlanningCoversKExactlyOnce()
    {
        foreach (var (k, splits) in new[] { (1, 1), (64, 3), (65, 2), (200, 4), (4096, 9), (11008, 16) })
        {
            var p = GemmProblem.Create<SkinnyTile>(129, 3, k, splits);
            Assert.True(p.Splits >= 1 && p.Splits <= splits, $"K={k} splits={p.Splits}");
            Assert.True((p.Splits - 1) * p.KTilesPerSplit < p.KTiles && p.Splits * p.KTilesPerSplit >= p.KTiles, $"K={k}: every split non-empty");
            Assert.Equal((k + 63) / 64, p.KTiles);
            Assert.Equal(2, p.TilesM);
            Assert.Equal(p.TilesM * p.TilesN * p.Splits, p.Groups);
        }
    }
}
