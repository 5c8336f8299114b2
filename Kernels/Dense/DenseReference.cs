using Kernels.Tensors;

namespace Kernels.Dense;

/// <summary>
/// CPU references of the dense operations over host spans, with the same names and shapes as <see cref="Dense"/>:
/// products in f64, one rounding to the element type at the end. The oracle of the tests and a usable CPU path.
/// </summary>
public static class DenseReference
{
    /// <summary>
    /// Y = X·Wᵀ (+ bias): <paramref name="x"/> is N×K, <paramref name="w"/> M×K, <paramref name="bias"/> M or empty,
    /// <paramref name="y"/> N×M, all row-major.
    /// </summary>
    public static void Gemm<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> w, ReadOnlySpan<T> bias, Span<T> y, int n, int k, int m)
        where T : unmanaged
    {
        var exact = GemmExact(x, w, bias, n, k, m);
        for (int i = 0; i < exact.Length; i++) y[i] = ElementTypes.FromFloat<T>((float)exact[i]);
    }

    /// <summary>The unrounded f64 result of <see cref="Gemm{T}"/> (N×M).</summary>
    public static double[] GemmExact<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> w, ReadOnlySpan<T> bias, int n, int k, int m)
        where T : unmanaged
    {
        Check(x.Length, (long)n * k, nameof(x));
        Check(w.Length, (long)m * k, nameof(w));
        if (!bias.IsEmpty) Check(bias.Length, m, nameof(bias));
        var xf = Widen(x);
        var wf = Widen(w);
        var result = new double[(long)n * m];
        for (int r = 0; r < n; r++)
            for (int c = 0; c < m; c++)
            {
                double sum = bias.IsEmpty ? 0 : ElementTypes.ToFloat(bias[c]);
                for (int i = 0; i < k; i++) sum += xf[(long)r * k + i] * wf[(long)c * k + i];
                result[(long)r * m + c] = sum;
            }
        return result;
    }

    /// <summary>y = W·x (+ bias): <paramref name="w"/> is M×K, <paramref name="x"/> K, <paramref name="y"/> M.</summary>
    public static void Gemv<T>(ReadOnlySpan<T> w, ReadOnlySpan<T> x, ReadOnlySpan<T> bias, Span<T> y, int m, int k)
        where T : unmanaged => Gemm(x, w, bias, y, 1, k, m);

    /// <summary>The unrounded f64 result of <see cref="Gemv{T}"/>.</summary>
    public static double[] GemvExact<T>(ReadOnlySpan<T> w, ReadOnlySpan<T> x, ReadOnlySpan<T> bias, int m, int k)
        where T : unmanaged => GemmExact(x, w, bias, 1, k, m);

    private static double[] Widen<T>(ReadOnlySpan<T> values) where T : unmanaged
    {
        var d = new double[values.Length];
        for (int i = 0; i < d.Length; i++) d[i] = ElementTypes.ToFloat(values[i]);
        return d;
    }

    private static void Check(int actual, long expected, string name)
    {
        if (actual != expected) throw new ArgumentException($"{name} has {actual} elements, expected {expected}.", name);
    }
}
