using Kernels.Tensors;
namespace Kernels.SpQR;

/// <summary>Options of the round-to-nearest SpQR encoder.</summary>
public sealed record SpqrEncoderOptions
{
    /// <summary>
    /// Fraction of weights (0..1) taken as outliers by weighted error before the statistics are refitted without them
    /// (docs/spqr.md §3 step 5). Weights the refitted grid still cannot represent within ŝ/2 become outliers too.
    /// </summary>
    public double OutlierFraction { get; init; } = 0.005;

    /// <summary>
    /// Optional per-input-column importance, e.g. mean(x²) over calibration activations (the diagonal of H). When set,
    /// columns are permuted by descending importance (SpQR's <c>act_order</c>) and errors are weighted by it.
    /// </summary>
    public float[]? ColumnImportance { get; init; }
}

/// <summary>
/// A minimal honest SpQR encoder (docs/spqr.md §3): round-to-nearest 3-bit codes over 16-column groups, bilevel
/// min-max statistics quantized to 3 bits per 16×16 tile with fp16 second-order statistics, outliers chosen by error
/// and stored as additive fp16 residuals. No calibration, no GPTQ error feedback: it produces valid, decodable data for
/// users starting from fp16 weights and for tests. Every code is chosen by decoding with the exact fp16 semantics of
/// the kernels, so the guarantees below hold for the decoded result, not an idealized one.
/// Guarantees: inliers |w − ŵ| ≤ |ŝ|/2 + <see cref="RoundingSlack"/>; outliers decode to fp16(w) whenever an fp16
/// residual can reach it (and to within one fp16 rounding of the residual otherwise).
/// </summary>
public static class SpqrEncoder
{
    /// <summary>The fp16 rounding allowance of the inlier bound: 2^-10·(|w| + |ŝ|·(|ẑ| + 8)).</summary>
    public static float RoundingSlack(float w, float scale, float zero) =>
        MathF.ScaleB(1f, -10) * (MathF.Abs(w) + MathF.Abs(scale) * (MathF.Abs(zero) + 8f));

    /// <summary>Encodes a dense [m, n] row-major f32 matrix (values finite and within fp16 range) and packs it.</summary>
    public static SpqrPacked Encode(ReadOnlySpan<float> weights, int rows, int columns, SpqrEncoderOptions? options = null,
        SpqrSparseLayout layout = SpqrSparseLayout.Csr) =>
        SpqrPacking.Pack(EncodeUnpacked(weights, rows, columns, options), layout);

    /// <summary>Encodes a dense [m, n] row-major f32 matrix into unpacked arrays.</summary>
    public static SpqrUnpacked EncodeUnpacked(ReadOnlySpan<float> weights, int rows, int columns, SpqrEncoderOptions? options = null)
    {
        options ??= new SpqrEncoderOptions();
        var u = new SpqrUnpacked(rows, columns); // validates the shape
        if (weights.Length != (long)rows * columns)
            throw new ArgumentException($"weights has {weights.Length} elements but a {rows}×{columns} matrix needs {(long)rows * columns}.", nameof(weights));
        if (options.OutlierFraction is < 0 or > 1 || double.IsNaN(options.OutlierFraction))
            throw new ArgumentOutOfRangeException(nameof(options), $"OutlierFraction must be in [0, 1], got {options.OutlierFraction}.");
        for (long i = 0; i < weights.Length; i++)
            if (!float.IsFinite(weights[(int)i]) || MathF.Abs(weights[(int)i]) > 65504f)
                throw new ArgumentException($"weights[{i}] = {weights[(int)i]} is not a finite fp16-range value.", nameof(weights));

        var importance = options.ColumnImportance;
        if (importance is not null)
        {
            if (importance.Length != columns)
                throw new ArgumentException($"ColumnImportance has {importance.Length} entries but n = {columns}.", nameof(options));
            if (importance.Any(v => !float.IsFinite(v) || v < 0))
                throw new ArgumentException("ColumnImportance must be finite and non-negative.", nameof(options));
            var order = Enumerable.Range(0, columns).OrderByDescending(j => importance[j]).ThenBy(j => j).ToArray();
            for (int j = 0; j < columns; j++) u.Permutation[j] = (ushort)order[j];
        }

        // Wp = W[:, perm], and the per-column error weight d_j.
        var wp = new float[(long)rows * columns];
        var d = new float[columns];
        for (int j = 0; j < columns; j++) d[j] = importance is null ? 1f : importance[u.Permutation[j]];
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < columns; j++)
                wp[(long)r * columns + j] = weights[(int)((long)r * columns + u.Permutation[j])];

        var excluded = new bool[wp.Length];
        var decoded = new float[wp.Length];
        FitAll(u, wp, excluded, decoded);

        long budget = (long)Math.Floor(options.OutlierFraction * wp.Length);
        if (budget > 0)
        {
            var err = new float[wp.Length];
            for (long i = 0; i < wp.Length; i++)
            {
                float e = wp[i] - decoded[i];
                err[i] = e * e * d[i % columns];
            }
            float threshold = KthLargest((float[])err.Clone(), budget);
            long taken = 0;
            for (long i = 0; i < wp.Length && taken < budget; i++)
                if (err[i] > 0 && err[i] >= threshold) { excluded[i] = true; taken++; }
            FitAll(u, wp, excluded, decoded); // refit the statistics without the chosen outliers
        }

        // Final split: chosen outliers, and any weight the refitted grid cannot reach within ŝ/2.
        var offsets = new int[rows + 1];
        var cols = new List<ushort>();
        var vals = new List<ushort>();
        for (int r = 0; r < rows; r++)
        {
            for (int j = 0; j < columns; j++)
            {
                long i = (long)r * columns + j;
                float s = u.Scale(r, j >> 4), z = u.Zero(r, j >> 4);
                float w = wp[i], wHat = decoded[i];
                if (!excluded[i] && MathF.Abs(w - wHat) <= MathF.Abs(s) / 2 + RoundingSlack(w, s, z)) continue;
                // An outlier: the code is free, so take the grid point from which an fp16 residual lands exactly on
                // fp16(w) with the smallest residual (the nearest point's residual may be too coarse to get there).
                int bestCode = -1;
                ushort v = 0;
                float bestError = float.PositiveInfinity, bestMagnitude = float.PositiveInfinity;
                for (int q = 0; q < 8; q++)
                {
                    float g = SpqrReference.Weight(q, s, z);
                    if (!float.IsFinite(g)) continue;
                    ushort candidate = Residual(w, g);
                    if (!Fp16.IsFinite(candidate)) continue;
                    float error = MathF.Abs(Fp16.ToFloat(Fp16.FromFloat(g + Fp16.ToFloat(candidate))) - Fp16.ToFloat(Fp16.FromFloat(w)));
                    float magnitude = MathF.Abs(Fp16.ToFloat(candidate));
                    if (error < bestError || (error == bestError && magnitude < bestMagnitude))
                        (bestCode, v, bestError, bestMagnitude) = (q, candidate, error, magnitude);
                }
                if (bestCode < 0) bestCode = u.Codes[(long)r * u.PaddedColumns + j];
                else u.Codes[(long)r * u.PaddedColumns + j] = (byte)bestCode;
                if (bestCode >= 0 && (v & 0x7FFF) == 0) continue; // the grid already reproduces w
                cols.Add((ushort)j);
                vals.Add(v);
            }
            offsets[r + 1] = cols.Count;
        }
        u.OutlierRowOffsets = offsets;
        u.OutlierColumns = cols.ToArray();
        u.OutlierValues = vals.ToArray();
        return u;
    }

    /// <summary>The fp16 residual v with fp16(ŵ + v) = fp16(w) when one exists (fp16(w − ŵ) or a neighbour).</summary>
    private static ushort Residual(float w, float wHat)
    {
        ushort target = Fp16.FromFloat(w);
        ushort v0 = Fp16.FromFloat(w - wHat);
        foreach (int delta in (ReadOnlySpan<int>)[0, 1, -1])
        {
            int bits = v0 + delta;
            if (bits is < 0 or > 0xFFFF || (bits & 0x7FFF) > 0x7BFF) continue;
            if (Fp16.FromFloat(wHat + Fp16.ToFloat((ushort)bits)) == target) return (ushort)bits;
        }
        return v0;
    }

    private static void FitAll(SpqrUnpacked u, float[] wp, bool[] excluded, float[] decoded)
    {
        Span<float> scales = stackalloc float[16];
        Span<float> zeros = stackalloc float[16];
        Span<byte> codes = stackalloc byte[16];
        Span<float> grid = stackalloc float[8];
        int m = u.Rows, n = u.Columns, tc = u.TileColumns;
        for (int tr = 0; tr < u.TileRows; tr++)
        for (int c = 0; c < tc; c++)
        {
            int r0 = tr * 16, rows = Math.Min(16, m - r0), c0 = c * 16, width = Math.Min(16, n - c0);
            // First level: min-max per (row, group), over the weights that are not outliers.
            for (int k = 0; k < rows; k++)
            {
                float lo = float.PositiveInfinity, hi = float.NegativeInfinity;
                for (int i = 0; i < width; i++)
                {
                    long at = (long)(r0 + k) * n + c0 + i;
                    if (excluded[at]) continue;
                    lo = MathF.Min(lo, wp[at]);
                    hi = MathF.Max(hi, wp[at]);
                }
                if (lo > hi) lo = hi = 0; // every weight is an outlier
                if (lo == hi) { lo = MathF.Min(lo, 0); hi = MathF.Max(hi, 0); } // constant: make it a grid end point
                float s = (hi - lo) / 7f;
                scales[k] = s;
                zeros[k] = s == 0 ? 0 : -lo / s;
            }
            // Second level: the tile's scales and zeros to 3 bits with fp16 statistics.
            var (sScale, sZero) = QuantizeStats(scales[..rows], codes);
            for (int k = 0; k < rows; k++) u.ScaleCodes[(long)(r0 + k) * tc + c] = codes[k];
            var (zScale, zZero) = QuantizeStats(zeros[..rows], codes);
            for (int k = 0; k < rows; k++) u.ZeroCodes[(long)(r0 + k) * tc + c] = codes[k];
            var stats = SecondOrderStats.From(sScale, zScale, sZero, zZero);
            u.Stats[(long)tr * tc + c] = stats;
            // Weight codes against the decoded grid.
            for (int k = 0; k < rows; k++)
            {
                int r = r0 + k;
                float sHat = stats.Scale(u.ScaleCodes[(long)r * tc + c]), zHat = stats.Zero(u.ZeroCodes[(long)r * tc + c]);
                for (int q = 0; q < 8; q++) grid[q] = SpqrReference.Weight(q, sHat, zHat);
                for (int i = 0; i < width; i++)
                {
                    long at = (long)r * n + c0 + i;
                    int best = Nearest(grid, wp[at]);
                    u.Codes[(long)r * u.PaddedColumns + c0 + i] = (byte)best;
                    decoded[at] = grid[best];
                }
            }
        }
    }

    /// <summary>Min-max 3-bit quantization of up to 16 values with fp16 scale and zero; codes chosen on the decoded grid.</summary>
    private static (ushort Scale, ushort Zero) QuantizeStats(ReadOnlySpan<float> values, Span<byte> codes)
    {
        float lo = float.PositiveInfinity, hi = float.NegativeInfinity;
        foreach (var v in values) { lo = MathF.Min(lo, v); hi = MathF.Max(hi, v); }
        // Candidate 1: min-max. Candidate 2: unit scale with the zero at −lo (exact for a constant; better when the
        // range is narrow against its offset, where fp16(code − zero) loses the codes).
        ushort s1 = Fp16.FromFloat((hi - lo) / 7f);
        ushort z1 = Fp16.ToFloat(s1) is var sv && sv > 0 && float.IsFinite(sv) ? Fp16.FromFloat(-lo / sv) : (ushort)0;
        ushort s2 = 0x3C00, z2 = Fp16.FromFloat(-lo);
        float e1 = Fp16.IsFinite(s1) && Fp16.IsFinite(z1) && Fp16.ToFloat(s1) > 0 ? GridError(values, s1, z1) : float.PositiveInfinity;
        float e2 = GridError(values, s2, z2);
        var (s, z) = e1 <= e2 ? (s1, z1) : (s2, z2);
        Span<float> grid = stackalloc float[8];
        for (int c = 0; c < 8; c++) grid[c] = SecondOrderStats.Dequantize(c, s, z);
        for (int k = 0; k < values.Length; k++) codes[k] = (byte)Nearest(grid, values[k]);
        return (s, z);
    }

    private static float GridError(ReadOnlySpan<float> values, ushort scale, ushort zero)
    {
        Span<float> grid = stackalloc float[8];
        for (int c = 0; c < 8; c++) grid[c] = SecondOrderStats.Dequantize(c, scale, zero);
        float worst = 0;
        foreach (var v in values) worst = MathF.Max(worst, MathF.Abs(grid[Nearest(grid, v)] - v));
        return float.IsFinite(worst) ? worst : float.PositiveInfinity;
    }

    private static int Nearest(ReadOnlySpan<float> grid, float v)
    {
        int best = 0;
        float bestErr = float.PositiveInfinity;
        for (int q = 0; q < grid.Length; q++)
        {
            float e = MathF.Abs(grid[q] - v);
            if (e < bestErr) { bestErr = e; best = q; }
        }
        return best;
    }

    /// <summary>The k-th largest value (1-based), by quickselect; reorders <paramref name="a"/>.</summary>
    private static float KthLargest(float[] a, long k)
    {
        long lo = 0, hi = a.Length - 1, target = k - 1;
        var rng = new Random(12345);
        while (lo < hi)
        {
            float pivot = a[lo + (long)(rng.NextDouble() * (hi - lo + 1))];
            long i = lo, j = hi;
            while (i <= j)
            {
                while (a[i] > pivot) i++;
                while (a[j] < pivot) j--;
                if (i <= j) { (a[i], a[j]) = (a[j], a[i]); i++; j--; }
            }
            if (target <= j) hi = j;
            else if (target >= i) lo = i;
            else return a[target];
        }
        return a[target];
    }
}
