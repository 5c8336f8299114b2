using Kernels.Tensors;
namespace Kernels.SpQR;

/// <summary>
/// CPU reference for the SpQR operations, over host spans: the tests' oracle and a usable CPU path. Dequantization is
/// bit-exact with the GPU (docs/spqr.md §1.4): ŝ = h(S_s·h(s_code − Z_s)), ẑ = h(S_z·h(z_code − Z_z)),
/// ŵ = h(ŝ·h(q − ẑ)), h = fp16 round-to-nearest-even after every step.
/// </summary>
public static class SpqrReference
{
    /// <summary>ŵ for one weight code given its row's ŝ and ẑ (fp16 values held in f32).</summary>
    public static float Weight(int code, float scale, float zero) =>
        Fp16.ToFloat(Fp16.FromFloat(scale * Fp16.ToFloat(Fp16.FromFloat(code - zero))));

    /// <summary>The 16 dequantized weights of one tile word, given its tile's statistics.</summary>
    public static void DecodeWord(ulong word, SecondOrderStats stats, Span<float> weights)
    {
        float s = stats.Scale(SpqrLayout.ScaleCode(word)), z = stats.Zero(SpqrLayout.ZeroCode(word));
        for (int i = 0; i < SpqrLayout.Tile; i++) weights[i] = Weight(SpqrLayout.Code(word, i), s, z);
    }

    /// <summary>deq(Q) in permuted column order, [m, n] row-major (padding dropped, outliers not added).</summary>
    public static float[] DequantizeDense(SpqrPacked w)
    {
        ArgumentNullException.ThrowIfNull(w);
        var result = new float[(long)w.Rows * w.Columns];
        Span<float> word = stackalloc float[SpqrLayout.Tile];
        int tc = w.TileColumns;
        for (int r = 0; r < w.Rows; r++)
        for (int c = 0; c < tc; c++)
        {
            long tile = (long)(r / 16) * tc + c;
            DecodeWord(w.DenseWeights[SpqrLayout.WordIndex(r, c, tc)], SpqrPacking.TileStats(w.DenseWeights, tile), word);
            for (int i = 0; i < 16 && c * 16 + i < w.Columns; i++) result[(long)r * w.Columns + c * 16 + i] = word[i];
        }
        return result;
    }

    /// <summary>
    /// Decodes W to dense fp16 in original column order, [m, n]: W[r, perm[j]] = h(ŵ[r, j] + v[r, j]) where v is the
    /// outlier at (r, j), if any (the sum in f32, then one rounding).
    /// </summary>
    public static void Decode(SpqrPacked w, Span<System.Half> output)
    {
        ArgumentNullException.ThrowIfNull(w);
        long size = (long)w.Rows * w.Columns;
        if (output.Length != size)
            throw new ArgumentException($"output has {output.Length} elements but W is {w.Rows}×{w.Columns}.", nameof(output));
        var dense = DequantizeDense(w);
        SpqrPacking.ForEachOutlier(w, (r, c, v) =>
            dense[(long)r * w.Columns + c] = Fp16.ToFloat(Fp16.FromFloat(dense[(long)r * w.Columns + c] + Fp16.ToFloat(v))));
        for (int r = 0; r < w.Rows; r++)
            for (int j = 0; j < w.Columns; j++)
                output[(int)((long)r * w.Columns + w.Permutation(j))] = BitConverter.UInt16BitsToHalf(Fp16.FromFloat(dense[(long)r * w.Columns + j]));
    }

    /// <summary>
    /// y = W·x before the final rounding: Σ_j ŵ[r,j]·x[perm j] + Σ_outliers v·x[perm c], accumulated in f64 (more
    /// accurate than any f32 summation order, so it bounds the GPU's).
    /// </summary>
    public static double[] GemvSums(SpqrPacked w, ReadOnlySpan<System.Half> x)
    {
        ArgumentNullException.ThrowIfNull(w);
        if (x.Length != w.Columns) throw new ArgumentException($"x has {x.Length} elements but W has n = {w.Columns} columns.", nameof(x));
        var xp = new double[w.Columns];
        for (int j = 0; j < w.Columns; j++) xp[j] = (double)x[w.Permutation(j)];
        var dense = DequantizeDense(w);
        var sums = new double[w.Rows];
        for (int r = 0; r < w.Rows; r++)
        {
            double acc = 0;
            for (int j = 0; j < w.Columns; j++) acc += dense[(long)r * w.Columns + j] * xp[j];
            sums[r] = acc;
        }
        SpqrPacking.ForEachOutlier(w, (r, c, v) => sums[r] += Fp16.ToFloat(v) * xp[c]);
        return sums;
    }

    /// <summary>y = W·x for one token, fp16 in and out (see <see cref="GemvSums"/>; one final rounding).</summary>
    public static void Gemv(SpqrPacked w, ReadOnlySpan<System.Half> x, Span<System.Half> y)
    {
        ArgumentNullException.ThrowIfNull(w);
        if (y.Length != w.Rows) throw new ArgumentException($"y has {y.Length} elements but W has m = {w.Rows} rows.", nameof(y));
        var sums = GemvSums(w, x);
        for (int r = 0; r < w.Rows; r++) y[r] = BitConverter.UInt16BitsToHalf(Fp16.FromFloat((float)sums[r]));
    }

    /// <summary>
    /// Y = X·Wᵀ before the final rounding, for X [tokens, n] (original column order): [tokens, m] sums in f64, the
    /// matrix decoded once (dense part and outliers kept apart, as in <see cref="GemvSums"/>).
    /// </summary>
    public static double[] GemmSums(SpqrPacked w, ReadOnlySpan<System.Half> x, int tokens)
    {
        ArgumentNullException.ThrowIfNull(w);
        int m = w.Rows, n = w.Columns;
        if (tokens < 1 || x.Length != (long)tokens * n) throw new ArgumentException($"x has {x.Length} elements but [{tokens}, {n}] is required.", nameof(x));
        var xp = new double[(long)tokens * n]; // packed column order
        for (int t = 0; t < tokens; t++)
            for (int j = 0; j < n; j++) xp[(long)t * n + j] = (double)x[(int)((long)t * n + w.Permutation(j))];
        var dense = DequantizeDense(w);
        var sums = new double[(long)tokens * m];
        Parallel.For(0, m, r =>
        {
            for (int t = 0; t < tokens; t++)
            {
                double acc = 0;
                for (int j = 0; j < n; j++) acc += dense[(long)r * n + j] * xp[(long)t * n + j];
                sums[(long)t * m + r] = acc;
            }
        });
        SpqrPacking.ForEachOutlier(w, (r, c, v) =>
        {
            for (int t = 0; t < tokens; t++) sums[(long)t * m + r] += Fp16.ToFloat(v) * xp[(long)t * n + c];
        });
        return sums;
    }

    /// <summary>Y = X·Wᵀ for a batch of tokens: X is [tokens, n], Y is [tokens, m], fp16, one rounding per output.</summary>
    public static void Gemm(SpqrPacked w, ReadOnlySpan<System.Half> x, int tokens, Span<System.Half> y)
    {
        ArgumentNullException.ThrowIfNull(w);
        if (x.Length != (long)tokens * w.Columns) throw new ArgumentException($"x has {x.Length} elements but [{tokens}, {w.Columns}] is required.", nameof(x));
        if (y.Length != (long)tokens * w.Rows) throw new ArgumentException($"y has {y.Length} elements but [{tokens}, {w.Rows}] is required.", nameof(y));
        for (int t = 0; t < tokens; t++)
            Gemv(w, x.Slice(t * w.Columns, w.Columns), y.Slice(t * w.Rows, w.Rows));
    }
}
