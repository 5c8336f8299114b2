namespace Kernels.SpQR;

/// <summary>
/// The SpQR representation field by field, before packing (what an encoder produces): 3-bit weight codes, 3-bit
/// first-order scale and zero codes per (row, 16-column group), one <see cref="SecondOrderStats"/> per 16×16 tile,
/// additive fp16 outliers in CSR, and the column permutation. Everything is in permuted column order and padded to
/// whole tiles (padding codes are 0; padding rows still have their tile's statistics).
/// </summary>
public sealed class SpqrUnpacked
{
    /// <summary>Allocates zeroed arrays for an m×n matrix with the identity permutation and no outliers.</summary>
    public SpqrUnpacked(int rows, int columns)
    {
        if (rows < 1) throw new ArgumentOutOfRangeException(nameof(rows), $"rows must be ≥ 1, got {rows}.");
        if (columns < 1 || columns > SpqrLayout.MaxColumns)
            throw new ArgumentOutOfRangeException(nameof(columns), $"columns must be in 1..{SpqrLayout.MaxColumns}, got {columns}.");
        Rows = rows;
        Columns = columns;
        Codes = new byte[(long)PaddedRows * PaddedColumns];
        ScaleCodes = new byte[(long)PaddedRows * TileColumns];
        ZeroCodes = new byte[(long)PaddedRows * TileColumns];
        Stats = new SecondOrderStats[(long)TileRows * TileColumns];
        OutlierRowOffsets = new int[rows + 1];
        OutlierColumns = [];
        OutlierValues = [];
        Permutation = new ushort[columns];
        for (int j = 0; j < columns; j++) Permutation[j] = (ushort)j;
    }

    /// <summary>m.</summary>
    public int Rows { get; }

    /// <summary>n.</summary>
    public int Columns { get; }

    /// <summary>⌈m/16⌉.</summary>
    public int TileRows => SpqrLayout.Tiles(Rows);

    /// <summary>⌈n/16⌉.</summary>
    public int TileColumns => SpqrLayout.Tiles(Columns);

    /// <summary>16·⌈m/16⌉.</summary>
    public int PaddedRows => TileRows * SpqrLayout.Tile;

    /// <summary>16·⌈n/16⌉.</summary>
    public int PaddedColumns => TileColumns * SpqrLayout.Tile;

    /// <summary>Weight codes 0..7, [PaddedRows, PaddedColumns] row-major, permuted column order.</summary>
    public byte[] Codes { get; }

    /// <summary>First-order scale codes 0..7, [PaddedRows, TileColumns].</summary>
    public byte[] ScaleCodes { get; }

    /// <summary>First-order zero codes 0..7, [PaddedRows, TileColumns].</summary>
    public byte[] ZeroCodes { get; }

    /// <summary>Second-order statistics per tile, [TileRows, TileColumns].</summary>
    public SecondOrderStats[] Stats { get; }

    /// <summary>CSR offsets of the outliers, m + 1 entries.</summary>
    public int[] OutlierRowOffsets { get; set; }

    /// <summary>Outlier columns (permuted index space), ascending within a row.</summary>
    public ushort[] OutlierColumns { get; set; }

    /// <summary>Outlier values as fp16 bits: residuals added to the decoded tile weight.</summary>
    public ushort[] OutlierValues { get; set; }

    /// <summary>perm: packed column j is column <c>Permutation[j]</c> of W.</summary>
    public ushort[] Permutation { get; set; }

    /// <summary>ŝ of row <paramref name="row"/> in column group <paramref name="tileColumn"/>.</summary>
    public float Scale(int row, int tileColumn) =>
        Stats[(long)(row / SpqrLayout.Tile) * TileColumns + tileColumn].Scale(ScaleCodes[(long)row * TileColumns + tileColumn]);

    /// <summary>ẑ of row <paramref name="row"/> in column group <paramref name="tileColumn"/>.</summary>
    public float Zero(int row, int tileColumn) =>
        Stats[(long)(row / SpqrLayout.Tile) * TileColumns + tileColumn].Zero(ZeroCodes[(long)row * TileColumns + tileColumn]);
}
