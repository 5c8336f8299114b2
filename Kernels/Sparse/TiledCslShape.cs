using Kernels.Tensors;

namespace Kernels.Sparse;

/// <summary>
/// What a Tiled-CSL matrix is, wherever it lives (<see cref="TiledCslArrays"/> on the host, <see cref="TiledCslMatrix"/>
/// on a device): its true shape M×K (any M and K; the tile grid covers it padded up to 128×64 multiples), its value
/// type and the statistics of its word array.
/// </summary>
/// <param name="Rows">True number of rows M (output features).</param>
/// <param name="Columns">True number of columns K (input features).</param>
/// <param name="ValueType">Element type of the stored values: <see cref="ElementType.Float16"/> or <see cref="ElementType.BFloat16"/>.</param>
/// <param name="NonzeroCount">Stored nonzeros (pads excluded).</param>
/// <param name="WordCount">Stored words, pads included.</param>
/// <param name="MaxTileWords">The most words any one tile holds (pads included); at most 8192.</param>
public readonly record struct TiledCslShape(int Rows, int Columns, ElementType ValueType, long NonzeroCount, long WordCount, int MaxTileWords)
{
    /// <summary>Tile rows: ⌈M / 128⌉.</summary>
    public int TileRowCount => TiledCsl.TilesAlong(Rows, TiledCsl.TileRows);

    /// <summary>Tile columns: ⌈K / 64⌉.</summary>
    public int TileColumnCount => TiledCsl.TilesAlong(Columns, TiledCsl.TileColumns);

    /// <summary>Number of tiles T.</summary>
    public int TileCount => TileRowCount * TileColumnCount;

    /// <summary>M padded up to a multiple of 128.</summary>
    public int PaddedRows => TileRowCount * TiledCsl.TileRows;

    /// <summary>K padded up to a multiple of 64.</summary>
    public int PaddedColumns => TileColumnCount * TiledCsl.TileColumns;

    /// <summary>Density of the densest tile, <see cref="MaxTileWords"/> / 8192 (Flash-LLM's kernel breaks above 0.5).</summary>
    public double WorstTileDensity => MaxTileWords / (double)TiledCsl.TileElements;

    /// <summary>Fraction of zeros in the true M×K matrix.</summary>
    public double Sparsity => 1.0 - NonzeroCount / ((double)Rows * Columns);

    /// <summary>Bytes of the format: 4 per word plus 4 per offset (T + 2 of them); the compulsory weight traffic of the sparse path.</summary>
    public long ByteLength => 4L * WordCount + 4L * (TileCount + TiledCsl.ExtraOffsets);

    /// <inheritdoc />
    public override string ToString() =>
        $"{Rows}×{Columns} {ElementTypes.Name(ValueType)}, {NonzeroCount} nonzeros ({Sparsity:P1} sparse), worst tile {WorstTileDensity:P1}";
}
