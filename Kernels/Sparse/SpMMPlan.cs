namespace Kernels.Sparse;

/// <summary>
/// The decision <see cref="SpMM"/> makes (or made) for one weight matrix and token count: the path, the K split of the
/// sparse path, and the byte-model estimate behind it. Returned by <see cref="SpMM.Multiply{T}(Kernels.Tensors.ReadOnlyDeviceTensorSpan{T}, TiledCslMatrix, Kernels.Tensors.DeviceTensorSpan{T}, SpMMPath)"/> and available
/// before a call from <see cref="SpMM.Plan"/>.
/// </summary>
/// <param name="Path">The path that runs: <see cref="SpMMPath.Sparse"/> or <see cref="SpMMPath.Dense"/>.</param>
/// <param name="Requested">What the caller asked for (<see cref="SpMMPath.Auto"/> unless overridden).</param>
/// <param name="Splits">K splits of the sparse path (1: no split-K; f32 partials and a deterministic reduction otherwise).</param>
/// <param name="Estimate">The byte model's figures for both paths.</param>
public sealed record SpMMPlan(SpMMPath Path, SpMMPath Requested, int Splits, SpMMEstimate Estimate)
{
    /// <summary>One line for logs and the tour: path, why, and the modelled bound.</summary>
    public override string ToString() =>
        $"{Path}{(Requested == SpMMPath.Auto ? " (byte model)" : " (forced)")}, split-K {Splits}, modelled sparse/dense speed-up {Estimate.SparseSpeedup:F2}x";
}
