using Kernels.Tensors;

namespace Kernels.Sparse;

/// <summary>
/// A Tiled-CSL matrix on the host: Flash-LLM's <c>NZWeights</c> word array and <c>TileOffsets</c> array (docs/flash-llm.md
/// §1), byte for byte, plus what Flash-LLM leaves implicit: the true shape (any M and K; the tile grid covers the
/// shape padded up to 128×64 multiples), the value type (fp16 or bf16) and statistics. Immutable and always valid:
/// instances come from <see cref="TiledCslEncoder"/> or from <see cref="FromFlashLlm"/>, which validates.
/// </summary>
public sealed class TiledCslArrays
{
    private readonly uint[] words;
    private readonly int[] tileOffsets;

    internal TiledCslArrays(uint[] words, int[] tileOffsets, int rows, int columns, ElementType valueType, long nonzeroCount, int maxTileWords)
    {
        this.words = words;
        this.tileOffsets = tileOffsets;
        Rows = rows;
        Columns = columns;
        ValueType = valueType;
        NonzeroCount = nonzeroCount;
        MaxTileWords = maxTileWords;
    }

    /// <summary>
    /// Validates and copies Flash-LLM arrays (<c>NZWeights</c> as uint32 words, <c>TileOffsets</c> with T + 2 entries in
    /// units of 4 words) for a matrix of true shape <paramref name="rows"/>×<paramref name="columns"/>. Throws
    /// <see cref="ArgumentException"/> for any violation listed on <see cref="TiledCslValidator"/>.
    /// </summary>
    public static TiledCslArrays FromFlashLlm(ReadOnlySpan<uint> words, ReadOnlySpan<int> tileOffsets, int rows, int columns,
        ElementType valueType = ElementType.Float16)
    {
        var summary = TiledCslValidator.Validate(words, tileOffsets, rows, columns, valueType);
        return new TiledCslArrays(words.ToArray(), tileOffsets.ToArray(), rows, columns, valueType, summary.NonzeroCount, summary.MaxTileWords);
    }

    /// <summary>Copies of the two arrays in Flash-LLM's layout (what its kernel and its <c>.bin</c> files hold).</summary>
    public (uint[] Words, int[] TileOffsets) ToFlashLlm() => ((uint[])words.Clone(), (int[])tileOffsets.Clone());

    internal uint[] WordArray => words;

    internal int[] OffsetArray => tileOffsets;

    /// <summary>The word array: per tile, its nonzeros and pads, each <c>value | location &lt;&lt; 16</c>.</summary>
    public ReadOnlySpan<uint> Words => words;

    /// <summary>T + 2 offsets in units of 4 words; tile t owns words <c>[4·off[t], 4·off[t+1])</c>.</summary>
    public ReadOnlySpan<int> TileOffsets => tileOffsets;

    /// <summary>True number of rows M (output features).</summary>
    public int Rows { get; }

    /// <summary>True number of columns K (input features).</summary>
    public int Columns { get; }

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

    /// <summary>Element type of the stored values: <see cref="ElementType.Float16"/> or <see cref="ElementType.BFloat16"/>.</summary>
    public ElementType ValueType { get; }

    /// <summary>Stored nonzeros (pads excluded).</summary>
    public long NonzeroCount { get; }

    /// <summary>Stored words, pads included.</summary>
    public long WordCount => words.Length;

    /// <summary>The most words any one tile holds (pads included); at most 8192.</summary>
    public int MaxTileWords { get; }

    /// <summary>Density of the densest tile, <see cref="MaxTileWords"/> / 8192 (Flash-LLM's kernel breaks above 0.5).</summary>
    public double WorstTileDensity => MaxTileWords / (double)TiledCsl.TileElements;

    /// <summary>Fraction of zeros in the true M×K matrix.</summary>
    public double Sparsity => 1.0 - NonzeroCount / ((double)Rows * Columns);

    /// <summary>Bytes of the format: 4 per word plus 4 per offset.</summary>
    public long ByteLength => 4L * words.Length + 4L * tileOffsets.Length;

    /// <summary>Decodes to a dense row-major M×K array of 16-bit value patterns (see <see cref="TiledCslDecoder"/>).</summary>
    public ushort[] ToDenseBits()
    {
        var dense = new ushort[(long)Rows * Columns];
        TiledCslDecoder.Decode(this, dense);
        return dense;
    }

    /// <inheritdoc />
    public override string ToString() =>
        $"Tiled-CSL {Rows}×{Columns} {ElementTypes.Name(ValueType)}, {NonzeroCount} nonzeros ({Sparsity:P1} sparse), worst tile {WorstTileDensity:P1}";
}
