using ILGPU;
using Kernels.Engine;

namespace Kernels.LowRank;

/// <summary>
/// Engine producer for a factor stored K×r (V of y = ((x·V)⊙s)·Uᵀ) that the engine must see as the weight Vᵀ (r×K):
/// each thread reads consecutive ranks of one k (coalesced along V's rows) and writes them down a column of the
/// swizzled tile. Zero outside r×K, as the contract requires. Used by the two-stage StreamMatmul (r &gt; 128).
/// </summary>
internal readonly struct FactorTransposeProducer : IWeightTileProducer
{
    public readonly ArrayView<ushort> Factor;
    public readonly int K, R;

    public FactorTransposeProducer(ArrayView<ushort> factor, int k, int r)
    {
        Factor = factor;
        K = k;
        R = r;
    }

    public bool HasEndPhase => false;

    public void Begin(in WeightTileRequest request)
    {
        var shared = request.Shared.Cast<ushort>();
        int elements = request.Rows * TileEngineConstants.TileK;
        for (int e = request.Thread; e < elements; e += TileEngineConstants.Threads)
        {
            int i = e % request.Rows, j = e / request.Rows;
            int rank = request.Row0 + i, k = request.K0 + j;
            shared[request.HalfIndex(i, j)] = rank < R && k < K ? Factor[(long)k * R + rank] : (ushort)0;
        }
    }

    public void End(in WeightTileRequest request) { }
}
