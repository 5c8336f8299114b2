using ILGPU;
using Kernels.Tensors;

namespace Kernels.Engine;

/// <summary>
/// Stores Y[n, m] = value (+ bias[m]) converted to <typeparamref name="T"/> (f32, f16 or bf16) into a row-major N×M
/// output (PyTorch's <c>Linear</c> output layout).
/// </summary>
public readonly struct StoreEpilogue<T, TConvert> : ITileEpilogue
    where T : unmanaged
    where TConvert : struct, IElementConverter<T>
{
    /// <summary>The output, row n at <c>n·RowStride</c>.</summary>
    public readonly ArrayView<T> Output;
    /// <summary>Bias per weight row (read only when <see cref="HasBias"/> is 1).</summary>
    public readonly ArrayView<T> Bias;
    /// <summary>1 to add <see cref="Bias"/>.</summary>
    public readonly int HasBias;
    /// <summary>Elements between output rows (M for a dense output).</summary>
    public readonly int RowStride;

    /// <summary>Creates the epilogue; pass <paramref name="bias"/> = null for none.</summary>
    public StoreEpilogue(ArrayView<T> output, ArrayView<T>? bias, int rowStride)
    {
        Output = output;
        Bias = bias ?? output;
        HasBias = bias.HasValue ? 1 : 0;
        RowStride = rowStride;
    }

    /// <inheritdoc />
    public void Store(int split, int m, int n, float value)
    {
        float v = HasBias != 0 ? value + default(TConvert).ToFloat(Bias[m]) : value;
        Output[(long)n * RowStride + m] = default(TConvert).FromFloat(v);
    }
}
