using Kernels.Tensors;
using Kernels.SpQR;
using Kernels.Tests.Harness;
using Xunit;

namespace Kernels.Tests.SpQR;

public class SpqrEncoderTests
{
    [Theory]
    [InlineData(32, 64, true)]
    [InlineData(37, 50, false)]
    [InlineData(5, 3, false)]
    public void InliersWithinHalfAStepAndOutliersExactToFp16(int m, int n, bool importance)
    {
        var seed = Seeded.Create();
        var (p, w) = SpqrTestData.Random(m, n, seed, importance: importance);
        var u = SpqrPacking.Unpack(p);
        var dense = SpqrReference.DequantizeDense(p); // permuted order, outliers not added
        var decoded = new Half[m * n];
        SpqrReference.Decode(p, decoded);
        var isOutlier = new bool[m * n];
        var residual = new float[m * n];
        for (int r = 0; r < m; r++)
            for (int e = u.OutlierRowOffsets[r]; e < u.OutlierRowOffsets[r + 1]; e++)
            {
                isOutlier[r * n + u.OutlierColumns[e]] = true;
                residual[r * n + u.OutlierColumns[e]] = (float)BitConverter.UInt16BitsToHalf(u.OutlierValues[e]);
            }
        int outliers = 0, exact = 0;
        for (int r = 0; r < m; r++)
        for (int j = 0; j < n; j++)
        {
            int col = u.Permutation[j];
            float original = w[r * n + col];
            float got = (float)decoded[r * n + col];
            if (isOutlier[r * n + j])
            {
                outliers++;
                // exact to fp16: the residual v brings the decoded value to fp16(w), up to the rounding of v itself
                // (an additive residual larger than w cannot always land on w's finer fp16 grid)
                float target = (float)(Half)original;
                float v = residual[r * n + j];
                float bound = MathF.ScaleB(1f, -11) * (MathF.Abs(v) + MathF.Abs(target)) + MathF.ScaleB(1f, -24);
                Assert.True(MathF.Abs(got - target) <= bound, $"outlier ({r},{col}): {got} vs fp16(w) {target}, residual {v} {seed.Tag}");
                exact += got == target ? 1 : 0;
            }
            else
            {
                float s = u.Scale(r, j / 16), z = u.Zero(r, j / 16);
                float bound = MathF.Abs(s) / 2 + MathF.ScaleB(1f, -10) * (MathF.Abs(original) + MathF.Abs(s) * (MathF.Abs(z) + 8));
                Assert.Equal(dense[r * n + j], got);
                Assert.True(MathF.Abs(original - got) <= bound, $"inlier ({r},{col}): |{original} − {got}| > ŝ/2 = {s / 2} {seed.Tag}");
            }
        }
        Assert.True(outliers >= (int)(0.01 * m * n) - 1 || m * n < 100, $"{outliers} outliers {seed.Tag}");
        Assert.True(exact >= outliers * 4 / 5, $"only {exact} of {outliers} outliers decode to exactly fp16(w) {seed.Tag}");
    }

    [Fact]
    public void PermutesColumnsByImportance()
    {
        var seed = Seeded.Create();
        const int m = 16, n = 40;
        var imp = seed.Uniform(n, 0, 1);
        var w = seed.Normal(m * n);
        var u = SpqrEncoder.EncodeUnpacked(w, m, n, new SpqrEncoderOptions { ColumnImportance = imp });
        for (int j = 1; j < n; j++) Assert.True(imp[u.Permutation[j - 1]] >= imp[u.Permutation[j]], seed.Tag);
        Assert.Equal(Enumerable.Range(0, n), u.Permutation.Select(v => (int)v).Order());
    }

    [Fact]
    public void ConstantAndZeroGroupsDecodeExactly()
    {
        // A dead (all-zero) row and a constant row: SpQR's [−1, 1] fallback would decode zeros to ≈0.14.
        const int m = 16, n = 32;
        var w = new float[m * n];
        for (int j = 0; j < n; j++) w[1 * n + j] = 0.5f;
        for (int j = 0; j < n; j++) w[2 * n + j] = -3f;
        var p = SpqrEncoder.Encode(w, m, n, new SpqrEncoderOptions { OutlierFraction = 0 });
        var decoded = new Half[m * n];
        SpqrReference.Decode(p, decoded);
        for (int i = 0; i < m * n; i++) Assert.Equal(w[i], (float)decoded[i]);
    }

    [Fact]
    public void RejectsBadInput()
    {
        Assert.Throws<ArgumentException>(() => SpqrEncoder.Encode(new float[10], 3, 4));
        Assert.Throws<ArgumentException>(() => SpqrEncoder.Encode([float.NaN, 0, 0, 0], 2, 2));
        Assert.Throws<ArgumentException>(() => SpqrEncoder.Encode([1e6f, 0, 0, 0], 2, 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => SpqrEncoder.Encode(new float[4], 2, 2, new SpqrEncoderOptions { OutlierFraction = 2 }));
        Assert.Throws<ArgumentException>(() => SpqrEncoder.Encode(new float[4], 2, 2, new SpqrEncoderOptions { ColumnImportance = [1f] }));
    }
}
