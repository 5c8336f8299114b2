using Kernels.Tensors;

namespace Kernels.Sparse;

/// <summary>
/// A Tiled-CSL matrix on the host: Flash-LLM's <c>NZWeights</c> word array and <c>TileOffsets</c> array (docs/flash-llm.md
/// §1), byte for byte, plus what Flash-LLM leaves implicit (<see cref="Shape"/>): the true shape, the value type (fp16 or
/// bf16) and statistics. Immutable and always valid:
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
        Shape = new TiledCslShape(rows, columns, valueType, nonzeroCount, words.Length, maxTileWords);
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

    /// <summary>Shape, value type and statistics (tile counts, padded shape, sparsity, worst tile, bytes).</summary>
    public TiledCslShape Shape { get; }

    /// <summary>True number of rows M (output features).</summary>
    public int Rows => Shape.Rows;

    /// <summary>True number of columns K (input features).</summary>
    public int Columns => Shape.Columns;

    /// <summary>Element type of the stored values: <see cref="ElementType.Float16"/> or <see cref="ElementType.BFloat16"/>.</summary>
    public ElementType ValueType => Shape.ValueType;

    /// <summary>Decodes to a dense row-major M×K array of 16-bit value patterns (see <see cref="TiledCslDecoder"/>).</summary>
    public ushort[] ToDenseBits()
    {
        var dense = new ushort[(long)Rows * Columns];
        TiledCslDecoder.Decode(this, dense);
        return dense;
    }

    /// <inheritdoc />
    public override string ToString() =>
        $"Tiled-CSL {Shape}";
}
