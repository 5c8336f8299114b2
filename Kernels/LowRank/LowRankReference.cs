namespace Kernels.LowRank;

/// <summary>
/// CPU references of the low-rank operations over host spans (row-major, f64 accumulation): the tests' oracles and a
/// usable CPU path. Names and argument order follow the device operations.
/// </summary>
public static class LowRankReference
{
    /// <summary>R = Pᵀ·G (Left, r×n) or G·Qᵀ (Right, m×r), as <see cref="GaLore.Project"/>.</summary>
    public static double[] Project(ReadOnlySpan<float> gradient, int m, int n, ReadOnlySpan<float> projector, int r, ProjectionSide side)
    {
        if (side == ProjectionSide.Left)
        {
            var result = new double[r * n];
            for (int k = 0; k < r; k++)
                for (int i = 0; i < m; i++)
                {
                    double pik = projector[i * r + k];
                    for (int j = 0; j < n; j++) result[k * n + j] += pik * gradient[i * n + j];
                }
            return result;
        }
        var right = new double[m * r];
        for (int i = 0; i < m; i++)
            for (int k = 0; k < r; k++)
            {
                double s = 0;
                for (int j = 0; j < n; j++) s += (double)gradient[i * n + j] * projector[k * n + j];
                right[i * r + k] = s;
            }
        return right;
    }

    /// <summary>ΔW = scale·P·N (Left) or scale·N·Q (Right), m×n, as <see cref="GaLore.BackProject"/>.</summary>
    public static double[] BackProject(ReadOnlySpan<float> lowRankUpdate, ReadOnlySpan<float> projector, int m, int n, int r,
        ProjectionSide side, float scale)
    {
        var update = new double[m * n];
        for (int i = 0; i < m; i++)
            for (int k = 0; k < r; k++)
            {
                double a = side == ProjectionSide.Left ? projector[i * r + k] : lowRankUpdate[i * r + k];
                for (int j = 0; j < n; j++)
                {
                    double b = side == ProjectionSide.Left ? lowRankUpdate[k * n + j] : projector[k * n + j];
                    update[i * n + j] += a * b;
                }
            }
        for (int i = 0; i < update.Length; i++) update[i] *= scale;
        return update;
    }

    /// <summary>W' = (1 − lr·λ)·W − lr·scale·(P·N or N·Q), as <see cref="GaLore.ApplyUpdate"/>.</summary>
    public static double[] ApplyUpdate(ReadOnlySpan<float> lowRankUpdate, ReadOnlySpan<float> projector, int m, int n, int r,
        ProjectionSide side, float learningRate, float scale, ReadOnlySpan<float> weight, float weightDecay = 0f)
    {
        var delta = BackProject(lowRankUpdate, projector, m, n, r, side, 1f);
        var result = new double[m * n];
        double keep = 1.0 - (double)learningRate * weightDecay;
        for (int i = 0; i < result.Length; i++) result[i] = keep * weight[i] - (double)learningRate * scale * delta[i];
        return result;
    }

    /// <summary>
    /// Orthonormalizes the <paramref name="cols"/> columns of a row-major <paramref name="rows"/>×<paramref name="cols"/>
    /// matrix in place by modified Gram–Schmidt, run twice (the second pass removes what the first left at f64 rounding).
    /// Columns must be linearly independent (random Gaussian columns are, with probability 1).
    /// </summary>
    public static void Orthonormalize(Span<double> q, int rows, int cols)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfNegative(cols);
        if (q.Length != (long)rows * cols)
            throw new ArgumentException($"q has {q.Length} elements but a {rows}×{cols} matrix needs {(long)rows * cols}.", nameof(q));
        for (int pass = 0; pass < 2; pass++)
            for (int j = 0; j < cols; j++)
            {
                for (int p = 0; p < j; p++)
                {
                    double dot = 0;
                    for (int i = 0; i < rows; i++) dot += q[i * cols + p] * q[i * cols + j];
                    for (int i = 0; i < rows; i++) q[i * cols + j] -= dot * q[i * cols + p];
                }
                double norm = 0;
                for (int i = 0; i < rows; i++) norm += q[i * cols + j] * q[i * cols + j];
                norm = Math.Sqrt(norm);
                for (int i = 0; i < rows; i++) q[i * cols + j] /= norm;
            }
    }

    /// <summary>Thin SVD of a row-major f32 matrix in f64 by one-sided Jacobi (see <see cref="SmallDense.Svd"/>).</summary>
    public static (double[] U, double[] Sigma, double[] V) Svd(ReadOnlySpan<float> a, int rows, int cols)
    {
        var d = new double[a.Length];
        for (int i = 0; i < d.Length; i++) d[i] = a[i];
        return SmallDense.Svd(d, rows, cols);
    }

    /// <summary>
    /// y = ((x·V)⊙s)·Uᵀ (+ bias) in f64 from widened operands (x M×K, V K×r, U N×r, bias N or empty), as
    /// <see cref="LowRankProduct.StreamMatmul{T}"/>; the intermediate is not rounded (the one-pass path keeps it in f32).
    /// </summary>
    public static double[] StreamMatmul(ReadOnlySpan<float> x, ReadOnlySpan<float> v, ReadOnlySpan<float> s,
        ReadOnlySpan<float> u, ReadOnlySpan<float> bias, int m, int k, int n, int r)
    {
        var t = new double[r];
        var y = new double[(long)m * n];
        for (int i = 0; i < m; i++)
        {
            Array.Clear(t);
            for (int p = 0; p < k; p++)
            {
                double xp = x[i * k + p];
                for (int q = 0; q < r; q++) t[q] += xp * v[p * r + q];
            }
            for (int q = 0; q < r; q++) t[q] *= s[q];
            for (int j = 0; j < n; j++)
            {
                double acc = bias.IsEmpty ? 0 : bias[j];
                for (int q = 0; q < r; q++) acc += t[q] * u[j * r + q];
                y[(long)i * n + j] = acc;
            }
        }
        return y;
    }

    /// <summary>
    /// y = (act(x·V1 + b1)·U2)·V2 (+ b2) in f64 from widened operands, as <see cref="LowRankProduct.StreamFfn{T}"/>
    /// (GELU in its tanh form).
    /// </summary>
    public static double[] StreamFfn(ReadOnlySpan<float> x, ReadOnlySpan<float> v1, ReadOnlySpan<float> b1, ReadOnlySpan<float> u2,
        ReadOnlySpan<float> v2, ReadOnlySpan<float> b2, FfnActivation activation, int m, int r1, int d, int r2, int h)
    {
        if (!Enum.IsDefined(activation)) throw new ArgumentOutOfRangeException(nameof(activation), activation, "Unknown activation.");
        var hidden = new double[d];
        var s = new double[r2];
        var y = new double[(long)m * h];
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < d; j++)
            {
                double a = b1[j];
                for (int p = 0; p < r1; p++) a += (double)x[i * r1 + p] * v1[p * d + j];
                hidden[j] = activation == FfnActivation.Gelu
                    ? 0.5 * a * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (a + 0.044715 * a * a * a)))
                    : a / (1 + Math.Exp(-a));
            }
            Array.Clear(s);
            for (int j = 0; j < d; j++)
                for (int q = 0; q < r2; q++) s[q] += hidden[j] * u2[j * r2 + q];
            for (int o = 0; o < h; o++)
            {
                double acc = b2.IsEmpty ? 0 : b2[o];
                for (int q = 0; q < r2; q++) acc += s[q] * v2[q * h + o];
                y[(long)i * h + o] = acc;
            }
        }
        return y;
    }
}
