namespace Kernels.LowRank;

/// <summary>
/// The r×r (or l×l) problems of the subspace algorithms, solved on the host in f64: Cholesky of a Gram matrix,
/// the inverse of its triangular factor, and a one-sided Jacobi SVD. They cost O(r³) ≈ 2 M flops at r = 128,
/// nothing next to the O(mnr) device passes, and f64 keeps them from adding error to the f32 results.
/// Matrices are row-major <c>double[n·n]</c> (or rows×cols).
/// </summary>
public static class SmallDense
{
    /// <summary>
    /// Upper-triangular R with A = RᵀR for a symmetric n×n matrix. Returns false (R unspecified) when a pivot is not
    /// positive, i.e. A is not numerically positive definite.
    /// </summary>
    public static bool Cholesky(ReadOnlySpan<double> a, int n, Span<double> r)
    {
        r[..(n * n)].Clear();
        for (int j = 0; j < n; j++)
        {
            double d = a[j * n + j];
            for (int k = 0; k < j; k++) d -= r[k * n + j] * r[k * n + j];
            if (!(d > 0) || !double.IsFinite(d)) return false;
            double rjj = Math.Sqrt(d);
            r[j * n + j] = rjj;
            for (int i = j + 1; i < n; i++)
            {
                double s = a[j * n + i];
                for (int k = 0; k < j; k++) s -= r[k * n + j] * r[k * n + i];
                r[j * n + i] = s / rjj;
            }
        }
        return true;
    }

    /// <summary>The inverse of an upper-triangular n×n matrix (upper-triangular too), by back substitution.</summary>
    public static double[] InvertUpper(ReadOnlySpan<double> r, int n)
    {
        var inv = new double[n * n];
        for (int j = 0; j < n; j++)
        {
            inv[j * n + j] = 1.0 / r[j * n + j];
            for (int i = j - 1; i >= 0; i--)
            {
                double s = 0;
                for (int k = i + 1; k <= j; k++) s += r[i * n + k] * inv[k * n + j];
                inv[i * n + j] = -s / r[i * n + i];
            }
        }
        return inv;
    }

    /// <summary>C = A·B for row-major n×n matrices.</summary>
    public static double[] Multiply(ReadOnlySpan<double> a, ReadOnlySpan<double> b, int n)
    {
        var c = new double[n * n];
        for (int i = 0; i < n; i++)
            for (int k = 0; k < n; k++)
            {
                double aik = a[i * n + k];
                if (aik == 0) continue;
                for (int j = 0; j < n; j++) c[i * n + j] += aik * b[k * n + j];
            }
        return c;
    }

    /// <summary>
    /// Thin SVD A = U·diag(σ)·Vᵀ of a row-major rows×cols matrix by one-sided Jacobi (Hestenes) rotations in f64:
    /// columns are orthogonalized pairwise until every pair's cosine is below 1e-15. Returns U (rows×k), σ (k,
    /// descending) and V (cols×k), k = min(rows, cols). Accurate to high relative precision even for tiny σ, which
    /// is why the tests use it as the exact-SVD oracle.
    /// </summary>
    public static (double[] U, double[] Sigma, double[] V) Svd(ReadOnlySpan<double> a, int rows, int cols)
    {
        if (rows < cols)
        {
            var t = new double[rows * cols];
            for (int i = 0; i < rows; i++)
                for (int j = 0; j < cols; j++) t[j * rows + i] = a[i * cols + j];
            var (u2, s2, v2) = Svd(t, cols, rows);
            return (v2, s2, u2);
        }
        int m = rows, n = cols;
        // Work column-major: column j of A is w[j·m .. j·m + m).
        var w = new double[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) w[j * m + i] = a[i * n + j];
        var v = new double[n * n];
        for (int j = 0; j < n; j++) v[j * n + j] = 1;
        for (int sweep = 0; sweep < 60; sweep++)
        {
            bool rotated = false;
            for (int p = 0; p < n - 1; p++)
                for (int q = p + 1; q < n; q++)
                {
                    double alpha = 0, beta = 0, gamma = 0;
                    for (int i = 0; i < m; i++)
                    {
                        double x = w[p * m + i], y = w[q * m + i];
                        alpha += x * x;
                        beta += y * y;
                        gamma += x * y;
                    }
                    if (gamma == 0 || Math.Abs(gamma) <= 1e-15 * Math.Sqrt(alpha * beta)) continue;
                    rotated = true;
                    double zeta = (beta - alpha) / (2 * gamma);
                    double tan = Math.Sign(zeta == 0 ? 1 : zeta) / (Math.Abs(zeta) + Math.Sqrt(1 + zeta * zeta));
                    double cos = 1 / Math.Sqrt(1 + tan * tan), sin = cos * tan;
                    for (int i = 0; i < m; i++)
                    {
                        double x = w[p * m + i], y = w[q * m + i];
                        w[p * m + i] = cos * x - sin * y;
                        w[q * m + i] = sin * x + cos * y;
                    }
                    for (int i = 0; i < n; i++)
                    {
                        double x = v[i * n + p], y = v[i * n + q];
                        v[i * n + p] = cos * x - sin * y;
                        v[i * n + q] = sin * x + cos * y;
                    }
                }
            if (!rotated) break;
        }
        var sigma = new double[n];
        for (int j = 0; j < n; j++)
        {
            double s = 0;
            for (int i = 0; i < m; i++) s += w[j * m + i] * w[j * m + i];
            sigma[j] = Math.Sqrt(s);
        }
        var order = Enumerable.Range(0, n).OrderByDescending(j => sigma[j]).ToArray();
        var u = new double[m * n];
        var vs = new double[n * n];
        var ss = new double[n];
        for (int jj = 0; jj < n; jj++)
        {
            int j = order[jj];
            ss[jj] = sigma[j];
            for (int i = 0; i < m; i++) u[i * n + jj] = sigma[j] > 0 ? w[j * m + i] / sigma[j] : (i == jj ? 1 : 0);
            for (int i = 0; i < n; i++) vs[i * n + jj] = v[i * n + j];
        }
        return (u, ss, vs);
    }
}
