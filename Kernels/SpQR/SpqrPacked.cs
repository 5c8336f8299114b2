namespace Kernels.SpQR;

/// <summary>
/// A SpQR weight matrix in the packed inference layout of <c>spqr_quant</c> and Hugging Face checkpoints, on the host:
/// <c>dense_weights</c>, <c>row_offsets</c>, <c>col_vals</c> and <c>in_perm</c> (docs/spqr.md §1.3), plus the
/// true shape, which the checkpoints do not store. Validated on construction (<see cref="SpqrValidator"/>), so every
/// instance is safe to hand to a kernel. W ≈ deq(Q) + S with Q the 3-bit tiles and S the additive fp16 outliers, both in
/// permuted column order: column j of the packed matrix is column <c>perm[j]</c> of W.
/// </summary>
public sealed class SpqrPacked
{
    /// <summary>Wraps and validates the four arrays (they are not copied: do not modify them afterwards).</summary>
    /// <param name="rows">m, the output features (any m ≥ 1).</param>
    /// <param name="columns">n, the input features (1 ≤ n ≤ 65536).</param>
    /// <param name="denseWeights">⌈m/16⌉·⌈n/16⌉·16 tile words.</param>
    /// <param name="rowOffsets">m + 1 (CSR) or ⌈m/16⌉ + 1 (PTCSR) outlier offsets.</param>
    /// <param name="colVals">Outliers: column in bits 0–15, fp16 value in bits 16–31.</param>
    /// <param name="inPerm">⌈n/2⌉ uint16 pairs (even index in the low half), or empty for the identity.</param>
    /// <param name="layout">The outlier layout; inferred from <paramref name="rowOffsets"/>' length when null (CSR when both fit).</param>
    public SpqrPacked(int rows, int columns, ulong[] denseWeights, int[] rowOffsets, uint[] colVals, uint[] inPerm,
        SpqrSparseLayout? layout = null)
    {
        ArgumentNullException.ThrowIfNull(denseWeights);
        ArgumentNullException.ThrowIfNull(rowOffsets);
        ArgumentNullException.ThrowIfNull(colVals);
        ArgumentNullException.ThrowIfNull(inPerm);
        Layout = layout ?? SpqrValidator.InferLayout(rows, rowOffsets.Length);
        SpqrValidator.Validate(rows, columns, denseWeights, rowOffsets, colVals, inPerm, Layout);
        Rows = rows;
        Columns = columns;
        DenseWeights = denseWeights;
        RowOffsets = rowOffsets;
        ColVals = colVals;
        InPerm = inPerm;
    }

    /// <summary>m, the number of rows (output features).</summary>
    public int Rows { get; }

    /// <summary>n, the number of columns (input features).</summary>
    public int Columns { get; }

    /// <summary>The outlier layout.</summary>
    public SpqrSparseLayout Layout { get; }

    /// <summary>The tile words (<c>dense_weights</c>).</summary>
    public ulong[] DenseWeights { get; }

    /// <summary>The outlier offsets (<c>row_offsets</c>).</summary>
    public int[] RowOffsets { get; }

    /// <summary>The outliers (<c>col_vals</c>).</summary>
    public uint[] ColVals { get; }

    /// <summary>The column permutation as uint16 pairs (<c>in_perm</c>); empty means the identity.</summary>
    public uint[] InPerm { get; }

    /// <summary>⌈m/16⌉.</summary>
    public int TileRows => SpqrLayout.Tiles(Rows);

    /// <summary>⌈n/16⌉.</summary>
    public int TileColumns => SpqrLayout.Tiles(Columns);

    /// <summary>Number of stored outliers (PTCSR padding slots excluded).</summary>
    public long OutlierCount => Layout == SpqrSparseLayout.Csr ? ColVals.Length : ColVals.LongCount(v => v != 0);

    /// <summary>Bytes of the four arrays: what a GEMV must read at least once.</summary>
    public long CompressedBytes => 8L * DenseWeights.Length + 4L * (RowOffsets.Length + ColVals.Length + InPerm.Length);

    /// <summary>Storage cost per weight of the whole representation, in bits.</summary>
    public double BitsPerWeight => 8.0 * CompressedBytes / ((double)Rows * Columns);

    /// <summary>Original column of packed column <paramref name="j"/>.</summary>
    public int Permutation(int j) => InPerm.Length == 0 ? j : (int)((InPerm[j >> 1] >> (16 * (j & 1))) & 0xFFFF);
}
