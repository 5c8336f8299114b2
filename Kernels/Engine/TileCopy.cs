using ILGPU;
using Kernels.Cuda.Primitives;

namespace Kernels.Engine;

/// <summary>
/// Copies a rows×64 window of a <see cref="Matrix16"/> into a swizzled shared tile, zero-filling outside the matrix:
/// 16-byte <c>cp.async</c> chunks when the matrix is aligned (the caller commits and waits), 16-bit loads otherwise
/// (K not a multiple of 8, or an unaligned base). Called by all threads of the group. Thread t copies chunk t mod 8 of
/// rows t/8, t/8 + 16, t/8 + 32, …: rows 16 apart have the same swizzle (row mod 8), so each next copy of a thread
/// is 2 KiB further in the tile and one row stride further in the matrix, and the loop carries only those two.
/// </summary>
public static class TileCopy
{
    // Rows one pass of the 128 threads covers (8 chunks of 16 bytes per row).
    private const int RowsPerPass = TileEngineConstants.Threads / 8;

    /// <summary>Copies rows [row0, row0 + tileRows) × columns [k0, k0 + 64) of <paramref name="source"/> (tileRows a multiple of 16).</summary>
    public static void Load(in Matrix16 source, ArrayView<uint> shared, int tileByteOffset, int tileRows, int row0, int k0, int thread) =>
        Load(source, shared, SharedAddress.DynamicBase(), tileByteOffset, tileRows, row0, k0, thread);

    /// <summary>
    /// <see cref="Load(in Matrix16, ArrayView{uint}, int, int, int, int, int)"/> with the shared base
    /// (<see cref="SharedAddress.DynamicBase"/>) read once by the caller.
    /// </summary>
    public static void Load(in Matrix16 source, ArrayView<uint> shared, uint sharedBase, int tileByteOffset, int tileRows, int row0, int k0, int thread)
    {
        int chunk = thread & 7, first = thread >> 3;
        int k = k0 + chunk * 8;
        int destination = tileByteOffset + SwizzledTile.ChunkByteOffset(first, chunk);
        int row = row0 + first;
        bool columnInside = k < source.Columns;
        if (source.Aligned != 0)
        {
            long word = ((long)row * source.RowStride + k) >> 1;
            long wordStep = (long)source.RowStride * (RowsPerPass / 2);
            for (int r = first; r < tileRows; r += RowsPerPass)
            {
                bool inside = columnInside && row < source.Rows;
                // With 0 valid bytes nothing is read, so the word index needs no select.
                CpAsync.Copy16(shared, sharedBase, destination, source.Words, word, source.Address, inside ? 16 : 0);
                destination += RowsPerPass * TileEngineConstants.RowBytes;
                word += wordStep;
                row += RowsPerPass;
            }
        }
        else
        {
            int valid = columnInside ? source.Columns - k : 0;
            for (int r = first; r < tileRows; r += RowsPerPass)
            {
                long index = (long)row * source.RowStride + k;
                int v = row < source.Rows ? valid : 0;
                int d = destination >> 2;
                shared[d] = Pair(source.Halves, index, v, 0);
                shared[d + 1] = Pair(source.Halves, index, v, 2);
                shared[d + 2] = Pair(source.Halves, index, v, 4);
                shared[d + 3] = Pair(source.Halves, index, v, 6);
                destination += RowsPerPass * TileEngineConstants.RowBytes;
                row += RowsPerPass;
            }
        }
    }

    private static uint Pair(ArrayView<ushort> halves, long index, int valid, int offset)
    {
        uint lo = offset < valid ? halves[index + offset] : 0u;
        uint hi = offset + 1 < valid ? (uint)halves[index + offset + 1] : 0u;
        return lo | (hi << 16);
    }
}
