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
        int splits = ChooseSplits(weights.Device, weights.Rows, n, weights.TileColumnCount);
        var estimate = Model.Estimate(weights.Rows, weights.Columns, Math.Max(n, 1), weights.WordCount, weights.TileCount, splits);
        var chosen = path == SpMMPath.Auto ? estimate.Cheaper : path;
        return new SpMMPlan(chosen, path, chosen == SpMMPath.Sparse ? splits : 1, estimate);
    }

    /// <summary>
    /// Split-K for the sparse path: enough groups to give every multiprocessor about two (Flash-LLM hand-tunes this per
    /// M; research/flash-llm.md §2), each split keeping at least 8 K tiles so the partial traffic stays small. One on the
    /// CPU accelerator, whose groups run one after another anyway.
    /// </summary>
    internal static int ChooseSplits(ComputeDevice device, int m, int n, int kTiles)
    {
        if (!device.IsCuda) return 1;
        long groups = (long)((m + 127) / 128) * Math.Max(1, (n + 15) / 16);
        long target = 2L * device.Accelerator.NumMultiprocessors;
        if (groups >= target) return 1;
        int splits = (int)Math.Min((target + groups - 1) / groups, Math.Max(1, kTiles / 8));
        return Math.Max(1, splits);
    }
}
