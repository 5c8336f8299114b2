namespace Kernels.Sparse;

/// <summary>
/// The Tiled-CSL layout of Flash-LLM (docs/flash-llm.md §1): the weight matrix is cut into 128×64 tiles, ordered
/// row-major over the tile grid; each stored element is one 32-bit word holding the 16-bit value (bits 0–15) and the
/// element's swizzled location inside the tile (bits 16–31). The swizzle is the one the <c>ldmatrix</c> addressing of
/// a 64-half (128-byte) shared-memory row applies, so a location is directly a half-word index into the shared tile.
/// </summary>
public static class TiledCsl
{
    /// <summary>Rows of a tile (output features).</summary>
    public const int TileRows = 128;

    /// <summary>Columns of a tile (input features, the K step of the kernel).</summary>
    public const int TileColumns = 64;

    /// <summary>Elements in a tile: also the exclusive upper bound of a location.</summary>
    public const int TileElements = TileRows * TileColumns;

    /// <summary>Words per offset unit: offsets count 16-byte vectors of four words.</summary>
    public const int WordsPerVector = 4;

    /// <summary>Extra entries of the offset array beyond one per tile: the leading 0 and a trailing empty tile.</summary>
    public const int ExtraOffsets = 2;

    /// <summary>The in-tile location of local row <paramref name="row"/> (0–127) and column <paramref name="column"/> (0–63).</summary>
    public static int Location(int row, int column) => row * TileColumns + (column ^ ((row & 7) << 3));

    /// <summary>The local row of a location.</summary>
    public static int RowOf(int location) => location >> 6;

    /// <summary>The local column of a location (the swizzle is its own inverse).</summary>
    public static int ColumnOf(int location) => (location & 63) ^ (((location >> 6) & 7) << 3);

    /// <summary>Packs a 16-bit value pattern and a location into a word.</summary>
    public static uint Word(ushort valueBits, int location) => valueBits | ((uint)location << 16);

    /// <summary>The 16-bit value pattern of a word.</summary>
    public static ushort ValueBits(uint word) => (ushort)word;

    /// <summary>The location of a word (validated words have locations below <see cref="TileElements"/>).</summary>
    public static int LocationOf(uint word) => (int)(word >> 16);

    /// <summary>True when a 16-bit pattern is +0 or −0 (the same test for fp16 and bf16).</summary>
    public static bool IsZero(ushort bits) => (bits & 0x7FFF) == 0;

    /// <summary>True when a 16-bit pattern is a NaN of the given value type.</summary>
    public static bool IsNaN(ushort bits, Kernels.Tensors.ElementType valueType) => valueType == Kernels.Tensors.ElementType.BFloat16
        ? (bits & 0x7F80) == 0x7F80 && (bits & 0x007F) != 0
        : (bits & 0x7C00) == 0x7C00 && (bits & 0x03FF) != 0;

    /// <summary>Number of tiles along a dimension of <paramref name="length"/> with tiles of <paramref name="tile"/>.</summary>
    internal static int TilesAlong(int length, int tile) => (length + tile - 1) / tile;
}
