namespace Kernels.Engine;

/// <summary>
/// The baseline producer: copies the dense row-major weight window with 16-byte <c>cp.async</c> (scalar loads when
/// K is not a multiple of 8), zero-filled outside M×K. Used by dense GEMM, LoRA's base GEMM and low-rank factors.
/// </summary>
public readonly struct DenseWeightProducer : IWeightTileProducer
{
    /// <summary>The weights W (M×K, row-major 16-bit).</summary>
    public readonly Matrix16 Weights;

    /// <summary>Produces tiles of <paramref name="weights"/>.</summary>
    public DenseWeightProducer(Matrix16 weights) => Weights = weights;

    /// <inheritdoc />
    public bool HasEndPhase => false;

    /// <inheritdoc />
    public void Begin(in WeightTileRequest request) =>
        TileCopy.Load(Weights, request.Shared, request.TileByteOffset, request.Rows, request.Row0, request.K0, request.Thread);

    /// <inheritdoc />
    public void End(in WeightTileRequest request) { }
}
