using Kernels.Tensors;
namespace Kernels.SpQR;

/// <summary>Where the outliers of a packed SpQR matrix are stored (docs/spqr.md §1.3, "Sparse part").</summary>
public enum SpqrSparseLayout
{
    /// <summary>Row-major CSR: <c>row_offsets</c> has m + 1 entries, a row's outliers are consecutive, columns ascending.</summary>
    Csr,

    /// <summary>
    /// Padded tile CSR ("PTCSR"): <c>row_offsets</c> has ⌈m/16⌉ + 1 entries, one per 16-row block; entry t of row j of
    /// a block sits at <c>base + 16·t + j</c> so a half-warp reads 16 rows at once; unused slots are the all-zero word.
    /// </summary>
    Ptcsr,
}

/// <summary>
/// The bit layout of the packed SpQR format (<c>spqr_quant</c> / Hugging Face): 3-bit weights in 16×16 tiles, one
/// little-endian uint64 per tile row of 16 weights, tiles in row-major tile order, 16 consecutive words per tile.
/// </summary>
public static class SpqrLayout
{
    /// <summary>Tile height and width (the checkpoints' <c>beta1</c> and <c>beta2</c>).</summary>
    public const int Tile = 16;

    /// <summary>Bits per weight code (the checkpoints' <c>bits</c>).</summary>
    public const int Bits = 3;

    /// <summary>Bit position of weight code i in a word is <c>CodeShift + 3·i</c>.</summary>
    public const int CodeShift = 6;

    /// <summary>Bit position of the word's byte of the tile's second-order statistics.</summary>
    public const int StatsByteShift = 54;

    /// <summary>Bits 62–63 of every word must be zero (SpQR's kernel shifts the stats byte out without masking).</summary>
    public const ulong ReservedMask = 0xC000_0000_0000_0000UL;

    /// <summary>The largest number of columns: column indices and the permutation are 16-bit unsigned.</summary>
    public const int MaxColumns = 65536;

    /// <summary>Number of 16-wide tiles covering <paramref name="length"/> rows or columns.</summary>
    public static int Tiles(int length) => (length + Tile - 1) / Tile;

    /// <summary>Number of uint64 words of <c>dense_weights</c> for an m×n matrix: ⌈m/16⌉·⌈n/16⌉·16.</summary>
    public static long DenseWords(int rows, int columns) => (long)Tiles(rows) * Tiles(columns) * Tile;

    /// <summary>Index of the word holding row <paramref name="row"/> of tile column <paramref name="tileColumn"/>.</summary>
    public static long WordIndex(int row, int tileColumn, int tileColumns) =>
        ((long)(row / Tile) * tileColumns + tileColumn) * Tile + row % Tile;

    /// <summary>The 3-bit first-order scale code of a word.</summary>
    public static int ScaleCode(ulong word) => (int)(word & 7);

    /// <summary>The 3-bit first-order zero code of a word.</summary>
    public static int ZeroCode(ulong word) => (int)((word >> 3) & 7);

    /// <summary>Weight code <paramref name="i"/> (0..15) of a word.</summary>
    public static int Code(ulong word, int i) => (int)((word >> (CodeShift + Bits * i)) & 7);

    /// <summary>The second-order statistics byte a word carries (byte <c>k &gt;&gt; 1</c> for tile row k).</summary>
    public static int StatsByte(ulong word) => (int)((word >> StatsByteShift) & 0xFF);

    /// <summary>Builds a word from its fields (codes 0..7 each; <paramref name="codes"/> has 16 entries).</summary>
    public static ulong Word(int scaleCode, int zeroCode, ReadOnlySpan<byte> codes, int statsByte)
    {
        ulong w = (uint)(scaleCode & 7) | ((ulong)(uint)(zeroCode & 7) << 3) | ((ulong)(uint)(statsByte & 0xFF) << StatsByteShift);
        for (int i = 0; i < Tile; i++) w |= (ulong)(uint)(codes[i] & 7) << (CodeShift + Bits * i);
        return w;
    }
}

/// <summary>
/// The four fp16 second-order statistics of one 16×16 tile, as the 64-bit word whose byte b rows 2b and 2b+1 carry:
/// bits 0–15 scale of the scales, 16–31 scale of the zeros, 32–47 zero of the scales, 48–63 zero of the zeros.
/// ŝ = fp16(S_s·fp16(s_code − Z_s)) and ẑ = fp16(S_z·fp16(z_code − Z_z)).
/// </summary>
/// <param name="Word">The packed 64-bit statistics word.</param>
public readonly record struct SecondOrderStats(ulong Word)
{
    /// <summary>Packs four fp16 values given as bits.</summary>
    public static SecondOrderStats From(ushort scaleOfScales, ushort scaleOfZeros, ushort zeroOfScales, ushort zeroOfZeros) =>
        new((ulong)scaleOfScales | ((ulong)scaleOfZeros << 16) | ((ulong)zeroOfScales << 32) | ((ulong)zeroOfZeros << 48));

    /// <summary>S_s, fp16 bits.</summary>
    public ushort ScaleOfScales => (ushort)Word;

    /// <summary>S_z, fp16 bits.</summary>
    public ushort ScaleOfZeros => (ushort)(Word >> 16);

    /// <summary>Z_s, fp16 bits.</summary>
    public ushort ZeroOfScales => (ushort)(Word >> 32);

    /// <summary>Z_z, fp16 bits.</summary>
    public ushort ZeroOfZeros => (ushort)(Word >> 48);

    /// <summary>The byte that tile rows 2b and 2b+1 carry in bits 54–61.</summary>
    public int Byte(int b) => (int)((Word >> (8 * b)) & 0xFF);

    /// <summary>ŝ for a scale code, with fp16 rounding after each step.</summary>
    public float Scale(int code) => Dequantize(code, ScaleOfScales, ZeroOfScales);

    /// <summary>ẑ for a zero code, with fp16 rounding after each step.</summary>
    public float Zero(int code) => Dequantize(code, ScaleOfZeros, ZeroOfZeros);

    /// <summary>fp16(scale·fp16(code − zero)).</summary>
    internal static float Dequantize(int code, ushort scale, ushort zero) =>
        Fp16.ToFloat(Fp16.FromFloat(Fp16.ToFloat(scale) * Fp16.ToFloat(Fp16.FromFloat(code - Fp16.ToFloat(zero)))));

    /// <summary>True when all four values are finite.</summary>
    public bool IsFinite => Fp16.IsFinite(ScaleOfScales) && Fp16.IsFinite(ScaleOfZeros) && Fp16.IsFinite(ZeroOfScales) && Fp16.IsFinite(ZeroOfZeros);
}
