namespace Kernels.Engine;

/// <summary>
/// The sizes of one engine launch: Y[n, m] = Σ_k W[m, k]·X[n, k] for m &lt; M, n &lt; N, k &lt; K, cut into group tiles
/// of TileM×TileN and, with split-K, into <see cref="Splits"/> ranges of <see cref="KTilesPerSplit"/> K tiles.
/// Group g handles M tile <c>g mod TilesM</c>, N tile <c>(g / TilesM) mod TilesN</c>, split <c>g / (TilesM·TilesN)</c>
/// (consecutive groups share activations and walk the weights once).
/// </summary>
public readonly struct GemmProblem
{
    /// <summary>Weight rows (output features).</summary>
    public readonly int M;
    /// <summary>Tokens.</summary>
    public readonly int N;
    /// <summary>Reduction length.</summary>
    public readonly int K;
    /// <summary>Group tiles along M.</summary>
    public readonly int TilesM;
    /// <summary>Group tiles along N.</summary>
    public readonly int TilesN;
    /// <summary>64-wide K tiles in total.</summary>
    public readonly int KTiles;
    /// <summary>K tiles per split (the last split may have fewer).</summary>
    public readonly int KTilesPerSplit;
    /// <summary>Number of K splits (1 = no split-K).</summary>
    public readonly int Splits;

    private GemmProblem(int m, int n, int k, int tilesM, int tilesN, int kTiles, int perSplit, int splits)
    {
        M = m; N = n; K = k; TilesM = tilesM; TilesN = tilesN; KTiles = kTiles; KTilesPerSplit = perSplit; Splits = splits;
    }

    /// <summary>Groups to launch.</summary>
    public int Groups => TilesM * TilesN * Splits;

    /// <summary>
    /// Plans a problem for a tile shape with at most <paramref name="requestedSplits"/> K splits (clamped so that
    /// every split has at least one K tile).
    /// </summary>
    public static GemmProblem Create<TShape>(int m, int n, int k, int requestedSplits = 1) where TShape : struct, ITileShape
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(m, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(n, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(k, 1);
        int tileM = TileShapes.TileM<TShape>(), tileN = TileShapes.TileN<TShape>();
        int kTiles = (k + TileEngineConstants.TileK - 1) / TileEngineConstants.TileK;
        int splits = Math.Clamp(requestedSplits, 1, kTiles);
        int perSplit = (kTiles + splits - 1) / splits;
        splits = (kTiles + perSplit - 1) / perSplit;
        return new GemmProblem(m, n, k, (m + tileM - 1) / tileM, (n + tileN - 1) / tileN, kTiles, perSplit, splits);
    }
}
