using Kernels.Engine;

namespace Kernels.Lora;

/// <summary>
/// Weight-tile producer for dX = dY·W: the engine multiplies by its weight operand's rows, so for dX it needs Wᵀ
/// (K×N) while W is stored N×K (PyTorch's Linear layout). Each tile element (i, j) = W[K0 + j, Row0 + i] is read
/// with 16-bit loads — consecutive threads take consecutive i, i.e. consecutive addresses of a W row — and two
/// columns j, j+1 (adjacent halves of one swizzled row) are stored as one 32-bit word. Zero outside the matrix.
/// W is read once per M tile of the output, like any weight in the engine; no transposed copy of W exists.
/// </summary>
internal readonly struct LoraTransposedWeightProducer : IWeightTileProducer
{
    /// <summary>W as stored: N rows × K columns.</summary>
    public readonly Matrix16 Weights;

    public LoraTransposedWeightProducer(Matrix16 weights) => Weights = weights;

    public bool HasEndPhase => false;

    public void Begin(in WeightTileRequest request)
    {
        int rows = request.Rows;
        int words = rows * (TileEngineConstants.TileK / 2);
        var halves = Weights.Halves;
        for (int e = request.Thread; e < words; e += TileEngineConstants.Threads)
        {
            int i = e % rows, j = (e / rows) * 2;
            int k = request.Row0 + i, n = request.K0 + j;
            uint lo = 0u, hi = 0u;
            if (k < Weights.Columns)
            {
                if (n < Weights.Rows) lo = halves[(long)n * Weights.RowStride + k];
                if (n + 1 < Weights.Rows) hi = halves[(long)(n + 1) * Weights.RowStride + k];
            }
            request.Shared[request.HalfIndex(i, j) >> 1] = lo | (hi << 16);
        }
    }

    public void End(in WeightTileRequest request) { }
}
