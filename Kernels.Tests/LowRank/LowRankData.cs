using Kernels.LowRank;
using Kernels.Tests.Harness;

namespace Kernels.Tests.LowRank;

/// <summary>
/// Host-side test data and f64 checks for the low-rank tests. The checks are independent of the library's code; the
/// orthonormal test bases use the reference's Gram–Schmidt (a wrong basis would plant a wrong spectrum and fail tests).
/// </summary>
internal static class LowRankData
{
    /// <summary>An m×k matrix with orthonormal columns (modified Gram–Schmidt, twice, on Gaussian columns), row-major.</summary>
    public static double[] Orthonormal(Seeded seed, int m, int k)
    {
        var q = new double[m * k];
        for (int i = 0; i < q.Length; i++) q[i] = seed.NextNormal();
        LowRankReference.Orthonormalize(q, m, k);
        return q;
    }

    /// <summary>G = U·diag(σ)·Vᵀ (m×n) with random orthonormal U, V: a matrix whose singular values are exactly σ.</summary>
    public static float[] WithSpectrum(Seeded seed, int m, int n, double[] sigma, out double[] u, out double[] v)
    {
        int k = sigma.Length;
        u = Orthonormal(seed, m, k);
        v = Orthonormal(seed, n, k);
        var g = new float[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = 0;
                for (int p = 0; p < k; p++) s += u[i * k + p] * sigma[p] * v[j * k + p];
                g[i * n + j] = (float)s;
            }
        return g;
    }

    /// <summary>‖BᵀB − I‖_F for the k columns of a row-major rows×k matrix (or the rows of a k×cols one with rowsAreVectors).</summary>
    public static double OrthonormalityError(ReadOnlySpan<float> b, int rows, int cols, bool rowsAreVectors)
    {
        int k = rowsAreVectors ? rows : cols, len = rowsAreVectors ? cols : rows;
        double err = 0;
        for (int p = 0; p < k; p++)
            for (int q = 0; q < k; q++)
            {
                double dot = 0;
                for (int i = 0; i < len; i++)
                    dot += rowsAreVectors ? (double)b[p * cols + i] * b[q * cols + i] : (double)b[i * cols + p] * b[i * cols + q];
                double d = dot - (p == q ? 1 : 0);
                err += d * d;
            }
        return Math.Sqrt(err);
    }

    /// <summary>‖PᵀG‖_F (Left, P m×r) or ‖G·Qᵀ‖_F (Right, Q r×n): the energy of G captured by the basis.</summary>
    public static double CapturedEnergy(ReadOnlySpan<float> g, int m, int n, ReadOnlySpan<float> basis, int r, bool left)
    {
        double total = 0;
        if (left)
            for (int k = 0; k < r; k++)
                for (int j = 0; j < n; j++)
                {
                    double s = 0;
                    for (int i = 0; i < m; i++) s += (double)basis[i * r + k] * g[i * n + j];
                    total += s * s;
                }
        else
            for (int i = 0; i < m; i++)
                for (int k = 0; k < r; k++)
                {
                    double s = 0;
                    for (int j = 0; j < n; j++) s += (double)g[i * n + j] * basis[k * n + j];
                    total += s * s;
                }
        return Math.Sqrt(total);
    }

    /// <summary>C = op(A)·op(B) in f64 for logical shapes M×K and K×N stored row-major (transposed when flagged).</summary>
    public static double[] Gemm(float[] a, bool ta, int lda, float[] b, bool tb, int ldb, int m, int n, int k)
    {
        var c = new double[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = 0;
                for (int p = 0; p < k; p++)
                    s += (double)(ta ? a[p * lda + i] : a[i * lda + p]) * (tb ? b[j * ldb + p] : b[p * ldb + j]);
                c[i * n + j] = s;
            }
        return c;
    }
}
