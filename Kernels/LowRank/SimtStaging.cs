using ILGPU;
using Kernels.Cuda.Primitives;
using Kernels.Tensors;

namespace Kernels.LowRank;

/// <summary>Output shape of a <see cref="SimtStaging.PutY{T, TWord}"/> store: y is M×N row-major, bias N.</summary>
internal struct SimtOutput
{
    public int M, N;
    public int HasBias;
    /// <summary>1 when y rows can be written 4 elements (8 bytes) at a time.</summary>
    public int VecY;
}

/// <summary>
/// Staging and stores of the SIMT streaming kernels (<see cref="StreamFfnKernel"/>): 16-bit operands widened to f32
/// shared tiles 8 k-columns at a time, and y written from the 8×8 register tile (<see cref="Accumulator8x8"/>).
/// </summary>
internal static class SimtStaging
{
    private const int BlockK = 8;

    /// <summary>
    /// Stages rows [row0, row0 + tileRows) × k [k0, k0 + 8) of a row-major rows×ld matrix (k contiguous) as
    /// tile[k·tileRows + row] in f32; one 16-byte vector is a whole 8-wide k slice of a row. Zero outside.
    /// </summary>
    internal static void StageRows<T, TWord>(ArrayView<T> src, int ld, int row0, int rows, int k0, int kEnd,
        ArrayView<Float4> tile, int tileRows, int vec, int tid, int threads)
        where T : unmanaged
        where TWord : struct, IHalfWord<T>
    {
        var scalar = tile.Cast<float>();
        for (int o = tid; o < tileRows; o += threads)
        {
            int row = row0 + o;
            long at = (long)row * ld + k0;
            if (vec != 0 && row < rows && k0 + 7 < kEnd)
            {
                var w = src.Cast<UInt4>()[at >> 3];
                scalar[0 * tileRows + o] = default(TWord).Widen(w.X);
                scalar[1 * tileRows + o] = default(TWord).Widen(w.X >> 16);
                scalar[2 * tileRows + o] = default(TWord).Widen(w.Y);
                scalar[3 * tileRows + o] = default(TWord).Widen(w.Y >> 16);
                scalar[4 * tileRows + o] = default(TWord).Widen(w.Z);
                scalar[5 * tileRows + o] = default(TWord).Widen(w.Z >> 16);
                scalar[6 * tileRows + o] = default(TWord).Widen(w.W);
                scalar[7 * tileRows + o] = default(TWord).Widen(w.W >> 16);
            }
            else
            {
                for (int j = 0; j < BlockK; j++)
                    scalar[j * tileRows + o] = row < rows && k0 + j < kEnd ? Load<T, TWord>(src, at + j) : 0f;
            }
        }
    }

    /// <summary>
    /// Stages k rows [k0, k0 + 8) × columns [col0, col0 + tileCols) of a row-major K×ld matrix (columns contiguous)
    /// as tile[k·tileCols + col − col0]; one 16-byte vector is 8 consecutive columns. Zero outside.
    /// </summary>
    internal static void StageColumns<T, TWord>(ArrayView<T> src, int ld, int k0, int kEnd, int col0, int cols,
        ArrayView<Float4> tile, int tileCols, int vec, int tid, int threads)
        where T : unmanaged
        where TWord : struct, IHalfWord<T>
    {
        var scalar = tile.Cast<float>();
        int perRow = tileCols / 8;
        for (int ch = tid; ch < BlockK * perRow; ch += threads)
        {
            int kk = ch / perRow, cl = (ch - kk * perRow) * 8, c = col0 + cl;
            int k = k0 + kk;
            long at = (long)k * ld + c;
            int d = kk * tileCols + cl;
            if (vec != 0 && k < kEnd && c + 7 < cols)
            {
                var w = src.Cast<UInt4>()[at >> 3];
                scalar[d] = default(TWord).Widen(w.X);
                scalar[d + 1] = default(TWord).Widen(w.X >> 16);
                scalar[d + 2] = default(TWord).Widen(w.Y);
                scalar[d + 3] = default(TWord).Widen(w.Y >> 16);
                scalar[d + 4] = default(TWord).Widen(w.Z);
                scalar[d + 5] = default(TWord).Widen(w.Z >> 16);
                scalar[d + 6] = default(TWord).Widen(w.W);
                scalar[d + 7] = default(TWord).Widen(w.W >> 16);
            }
            else
            {
                for (int j = 0; j < 8; j++)
                    scalar[d + j] = k < kEnd && c + j < cols ? Load<T, TWord>(src, at + j) : 0f;
            }
        }
    }

    internal static float Load<T, TWord>(ArrayView<T> src, long index)
        where T : unmanaged
        where TWord : struct, IHalfWord<T> =>
        default(TWord).Widen(default(TWord).Bits(src[index]));

    /// <summary>T[rank][row] = acc(row, rank)·s[rank]; padded ranks (≥ r) are zero already (V was zero-filled).</summary>
    private static void PutT(ArrayView<float> t, ArrayView<float> s, int r, int bm, int row, int c0, int c1, Float4 lo, Float4 hi)
    {
        t[(c0 + 0) * bm + row] = c0 + 0 < r ? lo.X * s[c0 + 0] : 0f;
        t[(c0 + 1) * bm + row] = c0 + 1 < r ? lo.Y * s[c0 + 1] : 0f;
        t[(c0 + 2) * bm + row] = c0 + 2 < r ? lo.Z * s[c0 + 2] : 0f;
        t[(c0 + 3) * bm + row] = c0 + 3 < r ? lo.W * s[c0 + 3] : 0f;
        t[(c1 + 0) * bm + row] = c1 + 0 < r ? hi.X * s[c1 + 0] : 0f;
        t[(c1 + 1) * bm + row] = c1 + 1 < r ? hi.Y * s[c1 + 1] : 0f;
        t[(c1 + 2) * bm + row] = c1 + 2 < r ? hi.Z * s[c1 + 2] : 0f;
        t[(c1 + 3) * bm + row] = c1 + 3 < r ? hi.W * s[c1 + 3] : 0f;
    }

    internal static void PutY<T, TWord>(ArrayView<T> y, ArrayView<T> bias, SimtOutput p, int row, int c0, int c1, Float4 lo, Float4 hi)
        where T : unmanaged
        where TWord : struct, IHalfWord<T>
    {
        if (row >= p.M) return;
        PutQuad<T, TWord>(y, bias, p, row, c0, lo);
        PutQuad<T, TWord>(y, bias, p, row, c1, hi);
    }

    /// <summary>Four consecutive outputs: one 8-byte store when aligned, else element by element.</summary>
    private static void PutQuad<T, TWord>(ArrayView<T> y, ArrayView<T> bias, SimtOutput p, int row, int col, Float4 v)
        where T : unmanaged
        where TWord : struct, IHalfWord<T>
    {
        if (col >= p.N) return;
        if (p.HasBias != 0)
        {
            v.X += Load<T, TWord>(bias, col);
            if (col + 1 < p.N) v.Y += Load<T, TWord>(bias, col + 1);
            if (col + 2 < p.N) v.Z += Load<T, TWord>(bias, col + 2);
            if (col + 3 < p.N) v.W += Load<T, TWord>(bias, col + 3);
        }
        long at = (long)row * p.N + col;
        if (p.VecY != 0 && col + 3 < p.N)
        {
            uint lo = default(TWord).Bits(default(TWord).Narrow(v.X)) | ((uint)default(TWord).Bits(default(TWord).Narrow(v.Y)) << 16);
            uint hi = default(TWord).Bits(default(TWord).Narrow(v.Z)) | ((uint)default(TWord).Bits(default(TWord).Narrow(v.W)) << 16);
            y.Cast<ulong>()[at >> 2] = lo | ((ulong)hi << 32);
            return;
        }
        y[at] = default(TWord).Narrow(v.X);
        if (col + 1 < p.N) y[at + 1] = default(TWord).Narrow(v.Y);
        if (col + 2 < p.N) y[at + 2] = default(TWord).Narrow(v.Z);
        if (col + 3 < p.N) y[at + 3] = default(TWord).Narrow(v.W);
    }
}
