namespace Kernels.Engine;

/// <summary>
/// The shared-memory layout of every engine tile (weights and activations): rows of 64 16-bit elements (128 bytes),
/// row r at byte <c>r·128</c>, and inside a row the eight 16-byte chunks permuted by <c>chunk XOR (r mod 8)</c>.
/// Element (r, c) therefore lives at half-word index <c>r·64 + (c XOR ((r &amp; 7) &lt;&lt; 3))</c> — exactly the
/// in-tile location Flash-LLM's Tiled-CSL format stores in each nonzero (docs/flash-llm.md §1), so a sparse
/// producer scatters words to <c>tileHalf + loc</c> unchanged. The XOR makes the 8 rows an <c>ldmatrix</c> phase reads
/// land in 8 different 16-byte bank groups (no bank conflicts) and keeps every 16-byte chunk contiguous, so dense
/// producers fill it with 16-byte <c>cp.async</c> copies.
/// </summary>
public static class SwizzledTile
{
    /// <summary>Half-word (16-bit) index of element (row, column) from the start of a tile; column in [0, 64).</summary>
    public static int HalfIndex(int row, int column) => row * 64 + (column ^ ((row & 7) << 3));

    /// <summary>Byte offset of the 16-byte chunk holding columns 8·chunk..8·chunk+7 of a row, from the tile start.</summary>
    public static int ChunkByteOffset(int row, int chunk) => row * 128 + ((chunk ^ (row & 7)) << 4);
}
