using Kernels.Tensors;
using ILGPU;
using ILGPU.Runtime.Cuda;
using DeviceHalf = ILGPU.Half;

namespace Kernels.SpQR;

/// <summary>Dequantization arithmetic shared by every SpQR kernel (fp16 rounding after each step, docs/spqr.md §1.4).</summary>
internal static class SpqrMath
{
    /// <summary>fp16(scale·fp16(code − zero)) for the 3-bit field at <paramref name="shift"/>.</summary>
    public static float Dequantize(ulong word, int shift, float scale, float zero) =>
        Fp16.Round(scale * Fp16.Round((float)(int)((uint)(word >> shift) & 7u) - zero)); // via int: ILGPU converts uint → float through f64

    /// <summary>Original column of packed column j, from the uint16-pair permutation.</summary>
    public static int Perm(ArrayView<uint> perm, int j) => (int)((perm[j >> 1] >> ((j & 1) << 4)) & 0xFFFFu);

    /// <summary>
    /// The first-order scales and zeros of tile rows 2b and 2b + 1 (words <paramref name="w0"/>, <paramref name="w1"/>,
    /// one 16-byte load), where <paramref name="b"/> = lane &amp; 7 and the 8 aligned lanes b = 0..7 hold the 8 row pairs
    /// of one 16×16 tile. Each pair carries byte b of the tile's second-order word (bits 54–61 of its first word); three
    /// XOR shuffles rebuild the whole word in every lane, then the scales and zeros are dequantized with fp16 rounding.
    /// Warp-collective: every lane of the warp must call it (a lane without a tile passes zero words).
    /// </summary>
    public static RowPairScales RowPair(ulong w0, ulong w1, int b)
    {
        uint statsByte = (uint)(w0 >> 54) & 0xFFu;
        uint lo = b < 4 ? statsByte << (8 * b) : 0u;
        uint hi = b >= 4 ? statsByte << (8 * (b - 4)) : 0u;
        lo |= Warp.ShuffleXor(lo, 1);
        hi |= Warp.ShuffleXor(hi, 1);
        lo |= Warp.ShuffleXor(lo, 2);
        hi |= Warp.ShuffleXor(hi, 2);
        lo |= Warp.ShuffleXor(lo, 4);
        hi |= Warp.ShuffleXor(hi, 4);
        float sss = Fp16.ToFloat((ushort)lo), szs = Fp16.ToFloat((ushort)(lo >> 16));
        float zss = Fp16.ToFloat((ushort)hi), zzs = Fp16.ToFloat((ushort)(hi >> 16));
        return new RowPairScales(
            Dequantize(w0, 0, sss, zss), Dequantize(w0, 3, szs, zzs),
            Dequantize(w1, 0, sss, zss), Dequantize(w1, 3, szs, zzs));
    }
}

/// <summary>Dequantized first-order scale and zero of two consecutive tile rows (see <see cref="SpqrMath.RowPair"/>).</summary>
internal readonly record struct RowPairScales(float S0, float Z0, float S1, float Z1);

/// <summary>Decode to dense fp16 in original column order: one thread per tile word, then one per row for outliers.</summary>
internal static class SpqrDecodeKernels
{
    /// <summary>Writes deq(Q) of every real (non-padding) weight to output[r, perm[j]].</summary>
    public static void Dense(ArrayView<ulong> dense, ArrayView<uint> perm, ArrayView<DeviceHalf> output, int m, int n)
    {
        int tileCols = (n + 15) >> 4;
        int words = ((m + 15) >> 4) * tileCols * 16;
        for (int wi = Grid.GlobalIndex.X; wi < words; wi += Grid.DimX * Group.DimX)
        {
            int tile = wi >> 4, k = wi & 15;
            int tr = tile / tileCols, tc = tile - tr * tileCols;
            int r = (tr << 4) + k;
            if (r >= m) continue;
            ulong stats = 0;
            for (int b = 0; b < 8; b++) stats |= ((dense[(tile << 4) + 2 * b] >> 54) & 0xFFUL) << (8 * b);
            float sss = Fp16.ToFloat((ushort)stats), szs = Fp16.ToFloat((ushort)(stats >> 16));
            float zss = Fp16.ToFloat((ushort)(stats >> 32)), zzs = Fp16.ToFloat((ushort)(stats >> 48));
            ulong word = dense[wi];
            float s = SpqrMath.Dequantize(word, 0, sss, zss);
            float z = SpqrMath.Dequantize(word, 3, szs, zzs);
            int c0 = tc << 4;
            int valid = n - c0 < 16 ? n - c0 : 16;
            long rowBase = (long)r * n;
            for (int i = 0; i < valid; i++)
                output[rowBase + SpqrMath.Perm(perm, c0 + i)] = Fp16.Narrow(SpqrMath.Dequantize(word, 6 + 3 * i, s, z));
        }
    }

    /// <summary>Adds each outlier in place: output[r, perm[c]] = h(output + v). Runs after <see cref="Dense"/> on the same stream.</summary>
    public static void Outliers(ArrayView<int> rowOffsets, ArrayView<uint> colVals, ArrayView<uint> perm, ArrayView<DeviceHalf> output,
        int m, int n, int ptcsr)
    {
        for (int r = Grid.GlobalIndex.X; r < m; r += Grid.DimX * Group.DimX)
        {
            int start, end, step;
            if (ptcsr != 0) { start = rowOffsets[r >> 4] + (r & 15); end = rowOffsets[(r >> 4) + 1]; step = 16; }
            else { start = rowOffsets[r]; end = rowOffsets[r + 1]; step = 1; }
            long rowBase = (long)r * n;
            for (int e = start; e < end; e += step)
            {
                uint cv = colVals[e];
                if (ptcsr != 0 && cv == 0) continue; // PTCSR padding
                long at = rowBase + SpqrMath.Perm(perm, (int)(cv & 0xFFFFu));
                output[at] = Fp16.Narrow(Fp16.Widen(output[at]) + Fp16.ToFloat((ushort)(cv >> 16)));
            }
        }
    }
}

/// <summary>Gathers activations into packed column order for the batched path: xp[t, j] = x[t, perm[j]].</summary>
internal static class SpqrGatherKernel
{
    public static void Kernel(ArrayView<DeviceHalf> x, ArrayView<uint> perm, ArrayView<DeviceHalf> xp, int tokens, int n)
    {
        long total = (long)tokens * n;
        for (long i = Grid.GlobalIndex.X; i < total; i += Grid.DimX * Group.DimX)
        {
            long t = i / n;
            int j = (int)(i - t * n);
            xp[i] = x[t * n + SpqrMath.Perm(perm, j)];
        }
    }
}
