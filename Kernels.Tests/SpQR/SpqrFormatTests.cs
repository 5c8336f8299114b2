using Kernels.SpQR;
using Kernels.Tests.Harness;
using Xunit;

namespace Kernels.Tests.SpQR;

public class SpqrFormatTests
{
    [Theory]
    [InlineData(16, 16, SpqrSparseLayout.Csr)]
    [InlineData(37, 50, SpqrSparseLayout.Csr)]
    [InlineData(37, 50, SpqrSparseLayout.Ptcsr)]
    [InlineData(1, 3, SpqrSparseLayout.Csr)]
    [InlineData(33, 17, SpqrSparseLayout.Ptcsr)]
    public void PackUnpackRoundTrips(int m, int n, SpqrSparseLayout layout)
    {
        var seed = Seeded.Create();
        var (u, _) = SpqrTestData.Integer(m, n, seed);
        var p = SpqrPacking.Pack(u, layout);
        Assert.Equal(layout, p.Layout);
        Assert.Equal(SpqrLayout.Tiles(m) * SpqrLayout.Tiles(n) * 16, p.DenseWeights.Length);
        Assert.Equal((n + 1) / 2, p.InPerm.Length);
        var back = SpqrPacking.Unpack(p);
        Compare.Exact<byte>(back.Codes, u.Codes, "codes", seed);
        Compare.Exact<byte>(back.ScaleCodes, u.ScaleCodes, "scale codes", seed);
        Compare.Exact<byte>(back.ZeroCodes, u.ZeroCodes, "zero codes", seed);
        Compare.Exact<SecondOrderStats>(back.Stats, u.Stats, "stats", seed);
        Compare.Exact<ushort>(back.Permutation, u.Permutation, "perm", seed);
        Compare.Exact<int>(back.OutlierRowOffsets, u.OutlierRowOffsets, "offsets", seed);
        Compare.Exact<ushort>(back.OutlierColumns, u.OutlierColumns, "outlier columns", seed);
        Compare.Exact<ushort>(back.OutlierValues, u.OutlierValues, "outlier values", seed);
    }

    [Fact]
    public void WordBitLayoutMatchesTheCheckpointFormat()
    {
        // A hand-built word: s=5, z=2, codes 0..7,0..7, stats byte 0xA7 (fixed facts of docs/spqr.md §1.3).
        var codes = Enumerable.Range(0, 16).Select(i => (byte)(i & 7)).ToArray();
        ulong w = SpqrLayout.Word(5, 2, codes, 0xA7);
        ulong expected = 5UL | (2UL << 3) | (0xA7UL << 54);
        for (int i = 0; i < 16; i++) expected |= (ulong)(i & 7) << (6 + 3 * i);
        Assert.Equal(expected, w);
        Assert.Equal(0UL, w >> 62);
        // Tile-row-major word order, 16 words per tile: row 17 of tile column 2 in a 3-tile-wide matrix.
        Assert.Equal((1 * 3 + 2) * 16 + 1, SpqrLayout.WordIndex(17, 2, 3));
        // Rows 2b and 2b+1 carry byte b of the statistics: S_s in bytes 0–1, S_z 2–3, Z_s 4–5, Z_z 6–7.
        var s = SecondOrderStats.From(0x1234, 0x5678, 0x9ABC, 0x0DEF);
        Assert.Equal(0x0DEF_9ABC_5678_1234UL, s.Word);
        Assert.Equal(0x34, s.Byte(0));
        Assert.Equal(0x0D, s.Byte(7));
    }

    [Fact]
    public void ReferenceDecodeMatchesTheClosedFormOnEveryCode()
    {
        var seed = Seeded.Create();
        foreach (var (m, n) in new[] { (16, 16), (37, 50), (5, 3) })
        {
            var (u, expected) = SpqrTestData.Integer(m, n, seed);
            Assert.Equal(Enumerable.Range(0, 8), u.Codes.Distinct().Order().Select(c => (int)c));
            Assert.Equal(Enumerable.Range(0, 8), u.ScaleCodes.Distinct().Order().Select(c => (int)c));
            foreach (var layout in new[] { SpqrSparseLayout.Csr, SpqrSparseLayout.Ptcsr })
            {
                var p = SpqrPacking.Pack(u, layout);
                var w = new Half[m * n];
                SpqrReference.Decode(p, w);
                Compare.Exact<float>(w.Select(h => (float)h).ToArray(), expected, $"reference decode {m}x{n} {layout}", seed);
            }
        }
    }

    [Fact]
    public void ReferenceRoundsToFp16AfterEveryStep()
    {
        // S_s ≈ 0.1 (0x2E66), Z_s ≈ 0.3 (0x34CD): ŝ(7) = h(S_s · h(7 − Z_s)), computed here with System.Half steps.
        float d = (float)(Half)(7 - (float)BitConverter.UInt16BitsToHalf(0x34CD));
        float expected = (float)(Half)((float)BitConverter.UInt16BitsToHalf(0x2E66) * d);
        var s = SecondOrderStats.From(0x2E66, 0x3C00, 0x34CD, 0);
        Assert.Equal(expected, s.Scale(7));
    }

    [Fact]
    public void AcceptsUnsignedColumnsAbove32767()
    {
        const int n = 40000;
        var u = new SpqrUnpacked(2, n);
        for (int t = 0; t < u.Stats.Length; t++) u.Stats[t] = SpqrTestData.IntegerStats;
        u.OutlierRowOffsets = [0, 1, 2];
        u.OutlierColumns = [39999, 32768];
        u.OutlierValues = [0x3C00, 0xC000];
        var p = SpqrPacking.Pack(u);
        Assert.Equal(39999u, p.ColVals[0] & 0xFFFF);
        Assert.Equal(0x3C00u, p.ColVals[0] >> 16); // not sign-extended into the value
    }

    private static SpqrPacked Valid(out SpqrUnpacked u, SpqrSparseLayout layout = SpqrSparseLayout.Csr)
    {
        (u, _) = SpqrTestData.Integer(20, 35, Seeded.With(7), outlierRate: 0.1);
        return SpqrPacking.Pack(u, layout);
    }

    private static void Rejects(string argument, Func<SpqrPacked, SpqrPacked> corrupt, SpqrSparseLayout layout = SpqrSparseLayout.Csr)
    {
        var p = Valid(out _, layout);
        var e = Assert.ThrowsAny<ArgumentException>(() => corrupt(p));
        Assert.Equal(argument, e.ParamName);
    }

    private static SpqrPacked With(SpqrPacked p, ulong[]? dense = null, int[]? offsets = null, uint[]? colVals = null, uint[]? perm = null,
        int? rows = null, int? columns = null) =>
        new(rows ?? p.Rows, columns ?? p.Columns, dense ?? (ulong[])p.DenseWeights.Clone(), offsets ?? (int[])p.RowOffsets.Clone(),
            colVals ?? (uint[])p.ColVals.Clone(), perm ?? (uint[])p.InPerm.Clone(), p.Layout);

    [Fact]
    public void ValidatorRejectsCorruptTileWords()
    {
        Rejects("denseWeights", p => { var d = (ulong[])p.DenseWeights.Clone(); d[5] |= 1UL << 62; return With(p, dense: d); });
        Rejects("denseWeights", p => { var d = (ulong[])p.DenseWeights.Clone(); d[3] ^= 1UL << 55; return With(p, dense: d); }); // rows 2,3 disagree
        Rejects("denseWeights", p => With(p, dense: p.DenseWeights[..^16]));
        Rejects("denseWeights", p =>
        {
            var d = (ulong[])p.DenseWeights.Clone(); // S_s = +inf (0x7C00): bytes 0 and 1 live in rows 0–3
            for (int k = 0; k < 4; k++) d[16 + k] = (d[16 + k] & ~(0xFFUL << 54)) | ((k < 2 ? 0x00UL : 0x7CUL) << 54);
            return With(p, dense: d);
        });
    }

    [Fact]
    public void ValidatorRejectsCorruptOffsetsAndOutliers()
    {
        Rejects("rowOffsets", p => { var o = (int[])p.RowOffsets.Clone(); (o[3], o[4]) = (o[4] + 1, o[3]); return With(p, offsets: o); });
        Rejects("rowOffsets", p => { var o = (int[])p.RowOffsets.Clone(); o[^1]++; return With(p, offsets: o); });
        Rejects("rowOffsets", p => { var o = (int[])p.RowOffsets.Clone(); o[0] = 1; return With(p, offsets: o); });
        Rejects("rowOffsets", p => With(p, offsets: p.RowOffsets[..^2]));
        Rejects("colVals", p => { var c = (uint[])p.ColVals.Clone(); c[0] = (c[0] & 0xFFFF0000) | 35; return With(p, colVals: c); });
        Rejects("colVals", p => { var c = (uint[])p.ColVals.Clone(); c[0] = (c[0] & 0xFFFF) | (0x7E00u << 16); return With(p, colVals: c); });
        Rejects("colVals", p =>
        {
            var c = (uint[])p.ColVals.Clone(); // duplicate column within a row
            int r = Enumerable.Range(0, p.Rows).First(r => p.RowOffsets[r + 1] - p.RowOffsets[r] >= 2);
            c[p.RowOffsets[r] + 1] = (c[p.RowOffsets[r] + 1] & 0xFFFF0000) | (c[p.RowOffsets[r]] & 0xFFFF);
            return With(p, colVals: c);
        });
        Rejects("rowOffsets", p => { var o = (int[])p.RowOffsets.Clone(); o[1] += 3; o[2] += 3; return With(p, offsets: o); }, SpqrSparseLayout.Ptcsr);
        Rejects("colVals", p =>
        {
            var c = (uint[])p.ColVals.Clone(); // an outlier in padding row 20 (rows 20..31 of block 1 do not exist)
            c[p.RowOffsets[1] + 4] = 0x3C000001;
            return With(p, colVals: c);
        }, SpqrSparseLayout.Ptcsr);
    }

    [Fact]
    public void ValidatorRejectsBadPermutationsAndShapes()
    {
        Rejects("inPerm", p => { var q = (uint[])p.InPerm.Clone(); q[0] = (q[0] & 0xFFFF0000) | (q[1] & 0xFFFF); return With(p, perm: q); });
        Rejects("inPerm", p => { var q = (uint[])p.InPerm.Clone(); q[2] = (q[2] & 0xFFFF0000) | 35; return With(p, perm: q); });
        Rejects("inPerm", p => With(p, perm: p.InPerm[..^1]));
        Rejects("inPerm", p => { var q = (uint[])p.InPerm.Clone(); q[^1] |= 1u << 16; return With(p, perm: q); }); // n = 35 is odd
        Rejects("columns", p => With(p, columns: 0));
        Rejects("rows", p => With(p, rows: 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new SpqrUnpacked(1, 65537));
    }
}
