namespace Kernels.Lora;

/// <summary>
/// CPU references of the LoRA operations in f64 over host spans (inputs already widened to f32; the dropout mask is
/// the same Philox mask the kernels draw). The tests' oracle and a usable CPU path. Shapes follow PEFT: X M×K,
/// W N×K, A r×K, B N×r, Y M×N; drop(X) = mask ⊙ X / (1 − p).
/// </summary>
public static class LoraReference
{
    /// <summary>drop(X)[m, k] as an f64 value.</summary>
    public static double Dropped(ReadOnlySpan<float> x, int k, int row, int column, LoraDropout dropout)
    {
        long e = (long)row * k + column;
        return dropout.Keeps(e) ? x[checked((int)e)] / (1.0 - dropout.P) : 0.0;
    }

    /// <summary>S = drop(X)·Aᵀ (M×r).</summary>
    public static void Shrink(ReadOnlySpan<float> x, ReadOnlySpan<float> a, int m, int k, int rank, LoraDropout dropout, Span<double> s)
    {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < rank; j++)
            {
                double sum = 0;
                for (int c = 0; c < k; c++) sum += Dropped(x, k, i, c, dropout) * a[j * k + c];
                s[i * rank + j] = sum;
            }
    }

    /// <summary>dS = α·dY·B (M×r) and dB = α·dYᵀ·S (N×r) for dY M×N, B N×r and a given S (M×r).</summary>
    public static void BackwardDsDb(ReadOnlySpan<float> dy, ReadOnlySpan<float> b, ReadOnlySpan<float> s, int m, int n, int rank,
        float alpha, Span<double> ds, Span<double> db)
    {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < rank; j++)
            {
                double sum = 0;
                for (int c = 0; c < n; c++) sum += (double)dy[i * n + c] * b[c * rank + j];
                ds[i * rank + j] = alpha * sum;
            }
        for (int c = 0; c < n; c++)
            for (int j = 0; j < rank; j++)
            {
                double sum = 0;
                for (int i = 0; i < m; i++) sum += (double)dy[i * n + c] * s[i * rank + j];
                db[c * rank + j] = alpha * sum;
            }
    }

    /// <summary>Y = X·Wᵀ + α·(drop(X)·Aᵀ)·Bᵀ (+ bias, when <paramref name="bias"/> is not empty), Y M×N.</summary>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> a, ReadOnlySpan<float> b,
        ReadOnlySpan<float> bias, int m, int k, int n, int rank, float alpha, LoraDropout dropout, Span<double> y) =>
        ForwardRows(x, w, a, b, bias, k, n, rank, alpha, dropout, Enumerable.Range(0, m).ToArray(), y);

    /// <summary>
    /// Rows <paramref name="rows"/> of <see cref="Forward"/> (y is rows.Length × N): the reference for spot checks at
    /// shapes too large for a full f64 product. Row indices are absolute, so the dropout mask is the real one.
    /// </summary>
    public static void ForwardRows(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> a, ReadOnlySpan<float> b,
        ReadOnlySpan<float> bias, int k, int n, int rank, float alpha, LoraDropout dropout, ReadOnlySpan<int> rows, Span<double> y)
    {
        var s = new double[rank];
        for (int q = 0; q < rows.Length; q++)
        {
            int i = rows[q];
            for (int j = 0; j < rank; j++)
            {
                double sum = 0;
                for (int c = 0; c < k; c++) sum += Dropped(x, k, i, c, dropout) * a[j * k + c];
                s[j] = sum;
            }
            for (int o = 0; o < n; o++)
            {
                double sum = bias.IsEmpty ? 0 : bias[o];
                for (int c = 0; c < k; c++) sum += (double)x[i * k + c] * w[o * k + c];
                double lora = 0;
                for (int j = 0; j < rank; j++) lora += s[j] * b[o * rank + j];
                y[q * n + o] = sum + alpha * lora;
            }
        }
    }

    /// <summary>
    /// All gradients of <see cref="Forward"/> for an upstream gradient dY (M×N): dS = α·dY·B (M×r),
    /// dA = dSᵀ·drop(X) (r×K), dB = α·dYᵀ·S (N×r), dX = dY·W + mask ⊙ (dS·A) / (1 − p) (M×K).
    /// </summary>
    public static void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> a,
        ReadOnlySpan<float> b, int m, int k, int n, int rank, float alpha, LoraDropout dropout,
        Span<double> ds, Span<double> da, Span<double> db, Span<double> dx)
    {
        var s = new double[(long)m * rank];
        Shrink(x, a, m, k, rank, dropout, s);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < rank; j++)
            {
                double sum = 0;
                for (int o = 0; o < n; o++) sum += (double)dy[i * n + o] * b[o * rank + j];
                ds[i * rank + j] = alpha * sum;
            }
        for (int j = 0; j < rank; j++)
            for (int c = 0; c < k; c++)
            {
                double sum = 0;
                for (int i = 0; i < m; i++) sum += ds[i * rank + j] * Dropped(x, k, i, c, dropout);
                da[j * k + c] = sum;
            }
        for (int o = 0; o < n; o++)
            for (int j = 0; j < rank; j++)
            {
                double sum = 0;
                for (int i = 0; i < m; i++) sum += dy[i * n + o] * s[i * rank + j];
                db[o * rank + j] = alpha * sum;
            }
        for (int i = 0; i < m; i++)
            for (int c = 0; c < k; c++)
            {
                double sum = 0;
                for (int o = 0; o < n; o++) sum += (double)dy[i * n + o] * w[o * k + c];
                double lora = 0;
                for (int j = 0; j < rank; j++) lora += ds[i * rank + j] * a[j * k + c];
                long e = (long)i * k + c;
                dx[(int)e] = sum + (dropout.Keeps(e) ? lora / (1.0 - dropout.P) : 0.0);
            }
    }

    /// <summary>
    /// Multi-adapter forward: Y = X·Wᵀ (+ bias) + α_a·(drop(X)·A_aᵀ)·B_aᵀ per row, a = <paramref name="rowAdapters"/>[m]
    /// (−1: base only). Each adapter is (rank, scale, A r×K, B N×r) as f32.
    /// </summary>
    public static void SegmentedForward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias,
        IReadOnlyList<LoraAdapter<float>> adapters, ReadOnlySpan<int> rowAdapters, int m, int k, int n, LoraDropout dropout, Span<double> y) =>
        SegmentedForwardRows(x, w, bias, adapters, rowAdapters, k, n, dropout, Enumerable.Range(0, m).ToArray(), y);

    /// <summary>Rows <paramref name="rows"/> of <see cref="SegmentedForward"/> (y is rows.Length × N), for spot checks.</summary>
    public static void SegmentedForwardRows(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias,
        IReadOnlyList<LoraAdapter<float>> adapters, ReadOnlySpan<int> rowAdapters, int k, int n, LoraDropout dropout,
        ReadOnlySpan<int> rows, Span<double> y)
    {
        for (int q = 0; q < rows.Length; q++)
        {
            int i = rows[q];
            int id = rowAdapters[i];
            var ad = id >= 0 ? adapters[id] : null;
            var s = new double[ad?.Rank ?? 0];
            for (int j = 0; j < s.Length; j++)
                for (int c = 0; c < k; c++) s[j] += Dropped(x, k, i, c, dropout) * ad!.A[j * k + c];
            for (int o = 0; o < n; o++)
            {
                double sum = bias.IsEmpty ? 0 : bias[o];
                for (int c = 0; c < k; c++) sum += (double)x[i * k + c] * w[o * k + c];
                double lora = 0;
                for (int j = 0; j < s.Length; j++) lora += s[j] * ad!.B[o * ad.Rank + j];
                y[q * n + o] = sum + (ad?.Scale ?? 0) * lora;
            }
        }
    }

    /// <summary>BGMV: y[m] += α_a·(x[m]·A_aᵀ)·B_aᵀ for rows whose adapter a ≥ 0 (no dropout at decode).</summary>
    public static void Bgmv(ReadOnlySpan<float> x, IReadOnlyList<LoraAdapter<float>> adapters, ReadOnlySpan<int> rowAdapters,
        int m, int k, int n, Span<double> y) => AddLora(x, adapters, rowAdapters, m, k, n, default, y);

    private static void AddLora(ReadOnlySpan<float> x, IReadOnlyList<LoraAdapter<float>> adapters, ReadOnlySpan<int> rowAdapters,
        int m, int k, int n, LoraDropout dropout, Span<double> y)
    {
        for (int i = 0; i < m; i++)
        {
            int id = rowAdapters[i];
            if (id < 0) continue;
            var ad = adapters[id];
            var s = new double[ad.Rank];
            for (int j = 0; j < ad.Rank; j++)
                for (int c = 0; c < k; c++) s[j] += Dropped(x, k, i, c, dropout) * ad.A[j * k + c];
            for (int o = 0; o < n; o++)
            {
                double lora = 0;
                for (int j = 0; j < ad.Rank; j++) lora += s[j] * ad.B[o * ad.Rank + j];
                y[i * n + o] += ad.Scale * lora;
            }
        }
    }
}
