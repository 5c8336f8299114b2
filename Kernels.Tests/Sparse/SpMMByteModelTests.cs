using Kernels.Sparse;
using Xunit;

namespace Kernels.Tests.Sparse;

public class SpMMByteModelTests
{
    private static SpMMEstimate At(double sparsity, int n, int m = 7168, int k = 7168)
    {
        long words = (long)Math.Round((1 - sparsity) * m * k);
        int tiles = (m / 128) * (k / 64);
        return SpMMByteModel.Default.Estimate(m, k, n, words, tiles, splits: 1);
    }

    [Theory]
    [InlineData(0.7, 8)]
    [InlineData(0.8, 16)]
    [InlineData(0.9, 32)]
    [InlineData(0.9, 64)]
    public void SparseWinsAtHighSparsityAndFewTokens(double sparsity, int n) => Assert.Equal(SpMMPath.Sparse, At(sparsity, n).Cheaper);

    [Theory]
    [InlineData(0.0, 8)]
    [InlineData(0.3, 8)]
    [InlineData(0.5, 16)]
    [InlineData(0.9, 512)]
    [InlineData(0.7, 256)]
    public void DenseWinsAtLowSparsityOrManyTokens(double sparsity, int n) => Assert.Equal(SpMMPath.Dense, At(sparsity, n).Cheaper);

    [Fact]
    public void CompulsoryBytesFollowTheFormat()
    {
        // 7168² at 80 %: about 41 MB of words against 102.8 MB dense (docs/flash-llm.md §1).
        var e = At(0.8, 8);
        Assert.InRange(e.SparseCompulsoryBytes / 1e6, 41, 41.5);
        Assert.InRange(e.DenseCompulsoryBytes / 1e6, 102.7, 103.1);
        // The modelled speed-up stays below the pure weight-traffic bound 1 / (2(1 − s)).
        Assert.InRange(e.SparseSpeedup, 1.0, 2.5);
    }
}
