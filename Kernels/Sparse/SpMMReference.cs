using Kernels.Tensors;

namespace Kernels.Sparse;

/// <summary>
/// The CPU oracle of <see cref="SpMM.Multiply{T}(ReadOnlyDeviceTensorSpan{T}, TiledCslMatrix, DeviceTensorSpan{T}, SpMMPath)"/>, same argument order over host spans: Y = X·Wᵀ with W the decoded Tiled-CSL matrix, every product and sum in f64.
/// X is N×K row-major (tokens × input features), Y is N×M row-major. Parallel over 128-row strips of W, each
/// decoded once into an f64 strip and multiplied densely (so ±Inf weights and activations behave as in a dense
/// product).
/// </summary>
public static class SpMMReference
{
    /// <summary>
    /// <paramref name="x"/> is N×K row-major (N = length / K), <paramref name="y"/> N×M. Computes Y[n, m] for m in [<paramref name="rowBegin"/>, <paramref name="rowEnd"/>) (all rows when
    /// <paramref name="rowEnd"/> is −1); other entries of <paramref name="y"/> are left as they are. A row range keeps the
    /// oracle affordable at full LLM shapes.
    /// </summary>
    public static void Multiply(ReadOnlySpan<float> x, TiledCslArrays weights, Span<double> y, int rowBegin = 0, int rowEnd = -1)
    {
        ArgumentNullException.ThrowIfNull(weights);
        int m = weights.Rows, k = weights.Columns;
        if (x.Length % k != 0) throw new ArgumentException($"x has {x.Length} elements, not a whole number of rows of K = {k}.", nameof(x));
        int n = x.Length / k;
        if (y.Length != (long)n * m) throw new ArgumentException($"y has {y.Length} elements but N×M = {n}×{m} needs {(long)n * m}.", nameof(y));
        if (rowEnd < 0) rowEnd = m;
        if (rowBegin < 0 || rowBegin > rowEnd || rowEnd > m)
            throw new ArgumentOutOfRangeException(nameof(rowBegin), $"Row range [{rowBegin}, {rowEnd}) is outside [0, {m}).");
        var xd = new double[x.Length];
        for (int i = 0; i < xd.Length; i++) xd[i] = x[i];
        var result = new double[y.Length];
        y.CopyTo(result);
        int firstStrip = rowBegin / TiledCsl.TileRows, lastStrip = rowEnd == 0 ? -1 : (rowEnd - 1) / TiledCsl.TileRows;
        var words = weights.WordArray;
        var offsets = weights.OffsetArray;
        var valueType = weights.ValueType;
        int tileColumns = weights.Shape.TileColumnCount;
        Parallel.For(firstStrip, lastStrip + 1, i =>
        {
            var strip = new double[TiledCsl.TileRows * k];
            for (int j = 0; j < tileColumns; j++)
            {
                long t = (long)i * tileColumns + j;
                for (long p = (long)offsets[t] * 4; p < (long)offsets[t + 1] * 4; p++)
                {
                    int loc = TiledCsl.LocationOf(words[p]);
                    int r = TiledCsl.RowOf(loc), c = j * TiledCsl.TileColumns + TiledCsl.ColumnOf(loc);
                    if (c < k) strip[r * k + c] = TiledCslDecoder.ToDouble(TiledCsl.ValueBits(words[p]), valueType);
                }
            }
            int r0 = Math.Max(rowBegin, i * TiledCsl.TileRows), r1 = Math.Min(rowEnd, (i + 1) * TiledCsl.TileRows);
            for (int row = r0; row < r1; row++)
            {
                var w = strip.AsSpan((row - i * TiledCsl.TileRows) * k, k);
                for (int token = 0; token < n; token++)
                {
                    var xs = xd.AsSpan(token * k, k);
                    double sum = 0;
                    for (int c = 0; c < k; c++) sum += xs[c] * w[c];
                    result[(long)token * m + row] = sum;
                }
            }
        });
        result.CopyTo(y);
    }

    /// <summary>As <see cref="Multiply(ReadOnlySpan{float}, TiledCslArrays, Span{double}, int, int)"/> with 16-bit host activations.</summary>
    public static void Multiply<T>(ReadOnlySpan<T> x, TiledCslArrays weights, Span<double> y, int rowBegin = 0, int rowEnd = -1) where T : unmanaged
    {
        var xf = new float[x.Length];
        ElementTypes.ToFloat(x, xf);
        Multiply(xf, weights, y, rowBegin, rowEnd);
    }
}
