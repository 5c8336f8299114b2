using Kernels.Tensors;
namespace Kernels.SpQR;

/// <summary>
/// Checks a packed SpQR matrix before any kernel reads it: on the CPU accelerator an out-of-range index kills the
/// process, and on a GPU it reads garbage. Every failure names the argument and says what is wrong where.
/// </summary>
public static class SpqrValidator
{
    /// <summary>The layout a <c>row_offsets</c> length implies: m + 1 → CSR, ⌈m/16⌉ + 1 → PTCSR (CSR when both, i.e. m = 1).</summary>
    public static SpqrSparseLayout InferLayout(int rows, int rowOffsetsLength)
    {
        if (rows < 1) throw new ArgumentOutOfRangeException(nameof(rows), $"rows must be ≥ 1, got {rows}.");
        if (rowOffsetsLength == rows + 1) return SpqrSparseLayout.Csr;
        if (rowOffsetsLength == SpqrLayout.Tiles(rows) + 1) return SpqrSparseLayout.Ptcsr;
        throw new ArgumentException(
            $"rowOffsets has {rowOffsetsLength} entries; m = {rows} needs {rows + 1} (CSR) or {SpqrLayout.Tiles(rows) + 1} (PTCSR).", "rowOffsets");
    }

    /// <summary>Throws <see cref="ArgumentException"/> unless the four arrays form a valid m×n SpQR matrix.</summary>
    public static void Validate(int rows, int columns, ReadOnlySpan<ulong> denseWeights, ReadOnlySpan<int> rowOffsets,
        ReadOnlySpan<uint> colVals, ReadOnlySpan<uint> inPerm, SpqrSparseLayout layout)
    {
        if (!Enum.IsDefined(layout))
            throw new ArgumentOutOfRangeException(nameof(layout), layout, "layout must be SpqrSparseLayout.Csr or SpqrSparseLayout.Ptcsr.");
        if (rows < 1) throw new ArgumentOutOfRangeException(nameof(rows), $"rows must be ≥ 1, got {rows}.");
        if (columns < 1 || columns > SpqrLayout.MaxColumns)
            throw new ArgumentOutOfRangeException(nameof(columns), $"columns must be in 1..{SpqrLayout.MaxColumns} (16-bit column indices), got {columns}.");
        ValidateDense(rows, columns, denseWeights);
        ValidatePermutation(columns, inPerm);
        if (layout == SpqrSparseLayout.Csr) ValidateCsr(rows, columns, rowOffsets, colVals);
        else ValidatePtcsr(rows, columns, rowOffsets, colVals);
    }

    private static void ValidateDense(int rows, int columns, ReadOnlySpan<ulong> words)
    {
        long expected = SpqrLayout.DenseWords(rows, columns);
        if (words.Length != expected)
            throw new ArgumentException(
                $"denseWeights has {words.Length} words but a {rows}×{columns} matrix needs ⌈m/16⌉·⌈n/16⌉·16 = {expected}.", "denseWeights");
        for (int tile = 0; tile < words.Length / SpqrLayout.Tile; tile++)
        {
            var t = words.Slice(tile * SpqrLayout.Tile, SpqrLayout.Tile);
            ulong stats = 0;
            for (int k = 0; k < SpqrLayout.Tile; k++)
            {
                if ((t[k] & SpqrLayout.ReservedMask) != 0)
                    throw new ArgumentException($"denseWeights word {tile * 16 + k} (tile {tile}, row {k}) has bits 62–63 set: 0x{t[k]:X16}.", "denseWeights");
                int b = SpqrLayout.StatsByte(t[k]);
                if ((k & 1) == 0) stats |= (ulong)b << (8 * (k >> 1));
                else if (b != SpqrLayout.StatsByte(t[k - 1]))
                    throw new ArgumentException(
                        $"denseWeights tile {tile}: rows {k - 1} and {k} must carry the same second-order byte {k >> 1}, got 0x{SpqrLayout.StatsByte(t[k - 1]):X2} and 0x{b:X2}.", "denseWeights");
            }
            if (!new SecondOrderStats(stats).IsFinite)
                throw new ArgumentException($"denseWeights tile {tile}: second-order statistics 0x{stats:X16} are not all finite fp16 values.", "denseWeights");
        }
    }

    private static void ValidatePermutation(int columns, ReadOnlySpan<uint> inPerm)
    {
        if (inPerm.Length == 0) return;
        int expected = (columns + 1) / 2;
        if (inPerm.Length != expected)
            throw new ArgumentException($"inPerm has {inPerm.Length} entries but n = {columns} needs ⌈n/2⌉ = {expected} uint16 pairs (or none for the identity).", "inPerm");
        var seen = new bool[columns];
        for (int j = 0; j < columns; j++)
        {
            int p = (int)((inPerm[j >> 1] >> (16 * (j & 1))) & 0xFFFF);
            if (p >= columns) throw new ArgumentException($"inPerm[{j}] = {p} is not a column of an n = {columns} matrix.", "inPerm");
            if (seen[p]) throw new ArgumentException($"inPerm is not a permutation: column {p} appears twice (again at {j}).", "inPerm");
            seen[p] = true;
        }
        if ((columns & 1) == 1 && (inPerm[^1] >> 16) != 0)
            throw new ArgumentException($"inPerm: the unused high half of the last pair must be 0 for odd n = {columns}.", "inPerm");
    }

    private static void ValidateOutlier(uint word, int columns, long index)
    {
        int c = (int)(word & 0xFFFF);
        if (c >= columns) throw new ArgumentException($"colVals[{index}] has column {c} but n = {columns}.", "colVals");
        if (!Fp16.IsFinite((ushort)(word >> 16)))
            throw new ArgumentException($"colVals[{index}] holds a non-finite fp16 value 0x{word >> 16:X4}.", "colVals");
    }

    private static void ValidateOffsets(ReadOnlySpan<int> offsets, int count, string what)
    {
        if (offsets[0] != 0) throw new ArgumentException($"rowOffsets[0] must be 0, got {offsets[0]}.", "rowOffsets");
        for (int i = 0; i + 1 < offsets.Length; i++)
            if (offsets[i + 1] < offsets[i])
                throw new ArgumentException($"rowOffsets must be non-decreasing: [{i}] = {offsets[i]} > [{i + 1}] = {offsets[i + 1]} ({what}).", "rowOffsets");
        if (offsets[^1] != count)
            throw new ArgumentException($"rowOffsets ends at {offsets[^1]} but colVals has {count} entries.", "rowOffsets");
    }

    private static void ValidateCsr(int rows, int columns, ReadOnlySpan<int> offsets, ReadOnlySpan<uint> colVals)
    {
        if (offsets.Length != rows + 1)
            throw new ArgumentException($"rowOffsets has {offsets.Length} entries but CSR over m = {rows} rows needs {rows + 1}.", "rowOffsets");
        ValidateOffsets(offsets, colVals.Length, "CSR");
        for (int r = 0; r < rows; r++)
        {
            int previous = -1;
            for (int e = offsets[r]; e < offsets[r + 1]; e++)
            {
                ValidateOutlier(colVals[e], columns, e);
                int c = (int)(colVals[e] & 0xFFFF);
                if (c <= previous)
                    throw new ArgumentException($"colVals: row {r} has columns out of order or repeated ({previous} then {c} at {e}).", "colVals");
                previous = c;
            }
        }
    }

    private static void ValidatePtcsr(int rows, int columns, ReadOnlySpan<int> offsets, ReadOnlySpan<uint> colVals)
    {
        int blocks = SpqrLayout.Tiles(rows);
        if (offsets.Length != blocks + 1)
            throw new ArgumentException($"rowOffsets has {offsets.Length} entries but PTCSR over m = {rows} rows needs ⌈m/16⌉ + 1 = {blocks + 1}.", "rowOffsets");
        ValidateOffsets(offsets, colVals.Length, "PTCSR");
        for (int blk = 0; blk < blocks; blk++)
        {
            int span = offsets[blk + 1] - offsets[blk];
            if (span % SpqrLayout.Tile != 0)
                throw new ArgumentException($"rowOffsets: PTCSR block {blk} spans {span} slots, not a multiple of 16.", "rowOffsets");
            for (int j = 0; j < SpqrLayout.Tile; j++)
            {
                int r = blk * SpqrLayout.Tile + j;
                int previous = -1;
                bool ended = false;
                for (int t = 0; t < span / SpqrLayout.Tile; t++)
                {
                    int e = offsets[blk] + SpqrLayout.Tile * t + j;
                    uint w = colVals[e];
                    if (w == 0) { ended = true; continue; }
                    if (ended || r >= rows)
                        throw new ArgumentException(
                            r >= rows ? $"colVals[{e}]: padding row {r} (m = {rows}) must hold only zero words."
                                      : $"colVals[{e}]: row {r} has an outlier after its terminating zero word.", "colVals");
                    ValidateOutlier(w, columns, e);
                    int c = (int)(w & 0xFFFF);
                    if (c <= previous)
                        throw new ArgumentException($"colVals: row {r} has columns out of order or repeated ({previous} then {c} at {e}).", "colVals");
                    previous = c;
                }
            }
        }
    }
}
