using Kernels.Runtime;

namespace Kernels.Sparse;

/// <summary>
/// Unstructured-sparse times dense on tensor cores (Flash-LLM's load-as-sparse, compute-as-dense): Y = X·Wᵀ with W a
/// <see cref="TiledCslMatrix"/>. Per matrix and token count a byte model (<see cref="Model"/>) picks the sparse path
/// or the dense GEMM on a cached dense copy; the choice is returned and can be forced.
/// </summary>
public static partial class SpMM
{
    /// <summary>The cost model behind <see cref="SpMMPath.Auto"/>; replace it with constants measured on your GPU.</summary>
    public static SpMMByteModel Model { get; set; } = SpMMByteModel.Default;

    /// <summary>
    /// The plan <see cref="SpMM"/> would run for <paramref name="weights"/> and <paramref name="n"/> tokens:
    /// the path (the byte model's choice unless <paramref name="path"/> forces one), the K split and the estimate.
    /// </summary>
    public static SpMMPlan Plan(TiledCslMatrix weights, int n, SpMMPath path = SpMMPath.Auto)
    {
        ArgumentNullException.ThrowIfNull(weights);
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        if (!Enum.IsDefined(path)) throw new ArgumentOutOfRangeException(nameof(path), path, "Unknown SpMM path.");
        int splits = ChooseSplits(weights.Device, weights.Rows, n, weights.Shape.TileColumnCount);
        var estimate = Model.Estimate(weights.Rows, weights.Columns, Math.Max(n, 1), weights.Shape.WordCount, weights.Shape.TileCount, splits);
        var chosen = path == SpMMPath.Auto ? estimate.Cheaper : path;
        return new SpMMPlan(chosen, path, chosen == SpMMPath.Sparse ? splits : 1, estimate);
    }

    /// <summary>
    /// Split-K for the sparse path: the engine's rule (enough groups to give every multiprocessor about two; Flash-LLM
    /// hand-tunes this per M, docs/flash-llm.md §2), keeping at least 8 K tiles a split so the f32 partial traffic
    /// stays small next to the weights. One on the CPU accelerator.
    /// </summary>
    internal static int ChooseSplits(ComputeDevice device, int m, int n, int kTiles)
    {
        int k = kTiles * TiledCsl.TileColumns;
        n = Math.Max(1, n);
        return ShapeFor(n) == SparseShape.Skinny
            ? Engine.TileEngine.AutoSplits(device, Engine.GemmProblem.Create<Engine.SkinnyTile>(m, n, k), MinKTilesPerSplit)
            : Engine.TileEngine.AutoSplits(device, Engine.GemmProblem.Create<Engine.LargeTile>(m, n, k), MinKTilesPerSplit);
    }

    private const int MinKTilesPerSplit = 8;
}
