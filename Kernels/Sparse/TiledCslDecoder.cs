using System.Runtime.InteropServices;
using Kernels.Tensors;

namespace Kernels.Sparse;

/// <summary>
/// Tiled-CSL back to a dense row-major M×K matrix, exactly: every stored word writes its 16-bit value at its cell and
/// every other cell is +0. The oracle of the encoder tests and the way the dense fallback of <see cref="SpMM"/> gets its
/// weights. Parallel over tile rows (each writes its own 128 rows).
/// </summary>
public static class TiledCslDecoder
{
    /// <summary>Decodes into <paramref name="dense"/> (exactly M·K 16-bit patterns, row-major).</summary>
    public static void Decode(TiledCslArrays matrix, Span<ushort> dense)
    {
        ArgumentNullException.ThrowIfNull(matrix);
        long size = (long)matrix.Rows * matrix.Columns;
        if (dense.Length != size)
            throw new ArgumentException($"dense has {dense.Length} elements but the {matrix.Rows}×{matrix.Columns} matrix needs exactly {size}.", nameof(dense));
        dense.Clear();
        int rows = matrix.Rows, columns = matrix.Columns, tileColumns = matrix.Shape.TileColumnCount;
        unsafe
        {
            fixed (ushort* dp = dense)
            fixed (uint* wp = matrix.Words)
            fixed (int* op = matrix.TileOffsets)
            {
                nint d = (nint)dp, w = (nint)wp, o = (nint)op;
                Parallel.For(0, matrix.Shape.TileRowCount, i =>
                {
                    var dst = (ushort*)d;
                    var words = (uint*)w;
                    var offsets = (int*)o;
                    for (int j = 0; j < tileColumns; j++)
                    {
                        long t = (long)i * tileColumns + j;
                        for (long p = (long)offsets[t] * 4, end = (long)offsets[t + 1] * 4; p < end; p++)
                        {
                            uint word = words[p];
                            int loc = TiledCsl.LocationOf(word);
                            int r = i * TiledCsl.TileRows + TiledCsl.RowOf(loc);
                            int c = j * TiledCsl.TileColumns + TiledCsl.ColumnOf(loc);
                            // Validation guarantees cells outside the true shape only receive zero pads.
                            if (r < rows && c < columns) dst[(long)r * columns + c] = TiledCsl.ValueBits(word);
                        }
                    }
                });
            }
        }
    }

    /// <summary>
    /// Decodes into a span of 16-bit elements: <see cref="System.Half"/> or <see cref="ILGPU.Half"/> for fp16 values,
    /// <see cref="BFloat16"/> for bf16 values.
    /// </summary>
    public static void Decode<T>(TiledCslArrays matrix, Span<T> dense) where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(matrix);
        TiledCslEncoder.RequireValueType<T>(matrix.ValueType, nameof(dense));
        Decode(matrix, MemoryMarshal.Cast<T, ushort>(dense));
    }

    /// <summary>Widens a 16-bit pattern of the given value type to f64 (exact).</summary>
    public static double ToDouble(ushort bits, ElementType valueType) => valueType == ElementType.BFloat16
        ? BFloat16.FromBits(bits).ToFloat()
        : (double)BitConverter.UInt16BitsToHalf(bits);
}
