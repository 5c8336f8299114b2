using Kernels.Sparse;
using Kernels.Tensors;
using Kernels.Tests.Harness;
using Xunit;

namespace Kernels.Tests.Sparse;

public class SpMMReferenceTests
{
    [Fact]
    public void MatchesANaiveProductOfTheDenseWeights()
    {
        var seed = Seeded.Create();
        const int m = 200, k = 100, n = 5;
        var w = SparseTestData.Weights(seed, m, k, 0.7, ElementType.Float16);
        var x = SparseTestData.Activations(seed, n, k, ElementType.Float16);
        var arrays = TiledCslEncoder.Encode(SparseTestData.ToHalf(w), m, k);
        var y = new double[n * m];
        SpMMReference.Multiply(x, arrays, y);
        var expected = new double[n * m];
        for (int t = 0; t < n; t++)
            for (int r = 0; r < m; r++)
            {
                double s = 0;
                for (int c = 0; c < k; c++) s += (double)x[t * k + c] * w[r * k + c];
                expected[t * m + r] = s;
            }
        for (int i = 0; i < y.Length; i++) Assert.True(Math.Abs(y[i] - expected[i]) <= 1e-12, $"at {i}: {y[i]} vs {expected[i]} {seed.Tag}");

        // A row range writes only those rows.
        var part = new double[n * m];
        Array.Fill(part, double.NaN);
        SpMMReference.Multiply(x, arrays, part, 130, 140);
        for (int t = 0; t < n; t++)
            for (int r = 0; r < m; r++)
                Assert.Equal(r is >= 130 and < 140 ? expected[t * m + r] : double.NaN, part[t * m + r], 12);
    }
}
