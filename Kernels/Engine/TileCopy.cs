using ILGPU;
using Kernels.Cuda.Primitives;

namespace Kernels.Engine;

/// <summary>
/// Copies a rows×64 window of a <see cref="Matrix16"/> into a swizzled shared tile, zero-filling outside the matrix:
/// 16-byte <c>cp.async</c> chunks when the matrix is aligned (the caller commits and waits), 16-bit loads otherwise
/// (K not a multiple of 8, or an unaligned base). Called by all threads of the group; each copies every 128th chunk.
/// </summary>
public static class TileCopy
{
    /// <summary>Copies rows [row0, row0 + tileRows) × columns [k0, k0 + 64) of <paramref name="source"/>.</summary>
    public static void Load(in Matrix16 source, ArrayView<uint> shared, int tileByteOffset, int tileRows, int row0, int k0, int thread)
    {
        int chunks = tileRows * 8;
        for (int c = thread; c < chunks; c += TileEngineConstants.Threads)
        {
            int r = c >> 3, chunk = c & 7;
            int row = row0 + r, k = k0 + chunk * 8;
            int destination = tileByteOffset + SwizzledTile.ChunkByteOffset(r, chunk);
            bool inside = row < source.Rows && k < source.Columns;
            if (source.Aligned != 0)
            {
                long word = inside ? ((long)row * source.RowStride + k) >> 1 : 0L;
                CpAsync.Copy16(shared, destination, source.Words, word, source.Address, inside ? 16 : 0);
            }
            else
            {
                long index = (long)row * source.RowStride + k;
                int valid = inside ? source.Columns - k : 0;
                int d = destination >> 2;
                shared[d] = Pair(source.Halves, index, valid, 0);
                shared[d + 1] = Pair(source.Halves, index, valid, 2);
                shared[d + 2] = Pair(source.Halves, index, valid, 4);
                shared[d + 3] = Pair(source.Halves, index, valid, 6);
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
