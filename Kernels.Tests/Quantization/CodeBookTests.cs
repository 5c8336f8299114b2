using System.Runtime.InteropServices;
using System.Security.Cryptography;
using ILGPU;
using ILGPU.Runtime;
using Kernels.Quantization;
using Kernels.Tests.Harness;
using Xunit;

namespace Kernels.Tests.Quantization;

public class CodeBookTests
{
    // docs/design.md §4 / docs/bitsandbytes.md §1.1.
    private const string SignedSha = "e732639a65f497b4ad684bb166a4467708255edd5207757de8b8f0c7e1fda89c";
    private const string UnsignedSha = "305f002cc11278fb769d13b25b9fd0c7c83c8402c40a878fe086f4039fde6398";

    private static string Sha256(ReadOnlySpan<float> values)
    {
        var bytes = new byte[values.Length * 4];
        for (int i = 0; i < values.Length; i++)
            BitConverter.TryWriteBytes(bytes.AsSpan(4 * i), BitConverter.SingleToUInt32Bits(values[i])); // little-endian on every .NET target we run
        Assert.True(BitConverter.IsLittleEndian);
        return Convert.ToHexStringLower(SHA256.HashData(bytes));
    }

    [Fact]
    public void DynamicMapsMatchPublishedHashes()
    {
        Assert.Equal(SignedSha, Sha256(CodeBook.DynamicSigned.Values));
        Assert.Equal(UnsignedSha, Sha256(CodeBook.DynamicUnsigned.Values));
    }

    // The fp32 recipe of docs/bitsandbytes.md §1.1: single-rounded (FMA) linspace, fp32 midpoints, fp32 decade scale. Host-only FMA.
    private static float[] Linspace(float start, float end, int n)
    {
        float step = (end - start) / (n - 1);
        var b = new float[n];
        for (int k = 0; k < n; k++)
            b[k] = k < n / 2 ? MathF.FusedMultiplyAdd(step, k, start) : MathF.FusedMultiplyAdd(-step, n - 1 - k, end);
        return b;
    }

    internal static float[] DynamicRecipe(bool signed)
    {
        var v = new List<float>();
        for (int i = 0; i < 7; i++)
        {
            int n = signed ? (1 << i) + 1 : (1 << (i + 1)) + 1;
            float step = (1.0f - 0.1f) / (n - 1);
            var b = new float[n];
            for (int k = 0; k < n; k++)
                b[k] = k < n / 2 ? MathF.FusedMultiplyAdd(step, k, 0.1f) : MathF.FusedMultiplyAdd(-step, n - 1 - k, 1.0f);
            float scale = (float)Math.Pow(10, i - 6);
            for (int k = 0; k < n - 1; k++)
            {
                float m = (b[k] + b[k + 1]) / 2;
                v.Add(scale * m);
                if (signed) v.Add(-(scale * m));
            }
        }
        v.Add(0f);
        v.Add(1f);
        v.Sort();
        return v.ToArray();
    }

    private static void AssertBits(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(BitConverter.SingleToUInt32Bits(expected[i]) == BitConverter.SingleToUInt32Bits(actual[i]),
                $"{what}[{i}]: recipe {BitConverter.SingleToUInt32Bits(expected[i]):x8} vs table {BitConverter.SingleToUInt32Bits(actual[i]):x8}");
    }

    [Fact]
    public void RecipeRegeneratesEveryLinearAndDynamicTableBitForBit()
    {
        AssertBits(DynamicRecipe(true), CodeBook.DynamicSigned.Values, "dynamic signed");
        AssertBits(DynamicRecipe(false), CodeBook.DynamicUnsigned.Values, "dynamic unsigned");
        var ls = Linspace(-1f, 1f, 255).ToList();
        ls.Insert(127, 0f);
        AssertBits(ls.ToArray(), CodeBook.LinearSigned.Values, "linear signed");
        AssertBits(Linspace(0f, 1f, 256), CodeBook.LinearUnsigned.Values, "linear unsigned");
    }

    [Fact]
    public void DynamicMapsHaveTheDocumentedLandmarks()
    {
        var s = CodeBook.DynamicSigned.Values;
        Assert.Equal(0xbf7e3333u, BitConverter.SingleToUInt32Bits(s[0]));
        Assert.Equal(0f, s[127]);
        Assert.Equal(0x3513a3b7u, BitConverter.SingleToUInt32Bits(s[128]));
        Assert.Equal(1f, s[255]);
        for (int j = 0; j < 127; j++) Assert.Equal(-s[128 + j], s[126 - j]);
        var u = CodeBook.DynamicUnsigned.Values;
        Assert.Equal(0f, u[0]);
        Assert.Equal(0x34ae7baau, BitConverter.SingleToUInt32Bits(u[1]));
        Assert.Equal(0x3f7f199au, BitConverter.SingleToUInt32Bits(u[254]));
        Assert.Equal(1f, u[255]);
        Assert.Equal(127, CodeBook.DynamicSigned.ZeroCode);
        Assert.Equal(0, CodeBook.DynamicUnsigned.ZeroCode);
        Assert.Equal(255, CodeBook.DynamicSigned.PlusOneCode);
        Assert.Equal(0, CodeBook.DynamicSigned.MinusOneCode);
    }

    [Fact]
    public void Nf4EqualsTheResearchList()
    {
        double[] nf4 =
        [
            -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
            -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
            0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
            0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
        ];
        AssertBits(nf4.Select(d => (float)d).ToArray(), CodeBook.NF4.Values, "nf4");
        Assert.Equal(4, CodeBook.NF4.Bits);
        Assert.True(CodeBook.NF4.IsAscendingByCode);
        Assert.Equal(7, CodeBook.NF4.ZeroCode);
    }

    [Fact]
    public void Fp4IsIndexedByNibbleWithSignBit3()
    {
        double[] magnitude = [0, 0.0625, 8, 12, 4, 6, 2, 3]; // by 3-bit pattern, divided by 12 (docs/bitsandbytes.md §1.3)
        var v = CodeBook.FP4.Values;
        for (int code = 0; code < 16; code++)
        {
            float m = (float)(magnitude[code & 7] / 12.0);
            float expected = (code & 8) != 0 ? -m : m;
            Assert.Equal(BitConverter.SingleToUInt32Bits(expected), BitConverter.SingleToUInt32Bits(v[code]));
        }
        Assert.Equal(0x80000000u, BitConverter.SingleToUInt32Bits(v[8])); // −0 exists as a code but is never produced
        Assert.False(CodeBook.FP4.IsAscendingByCode);
        Assert.Equal(15, CodeBook.FP4.Sorted.Length);
        Assert.Equal(0, CodeBook.FP4.ZeroCode);
        Assert.Equal(3, CodeBook.FP4.PlusOneCode);
        Assert.Equal(11, CodeBook.FP4.MinusOneCode);
        for (int i = 0; i < 15; i++) Assert.Equal(CodeBook.FP4.Sorted[i], v[CodeBook.FP4.SortedCodes[i]]);
    }

    [Fact]
    public void MidpointsAreSingleRoundedFp32()
    {
        foreach (var book in CodeBook.All)
        {
            var s = book.Sorted;
            Assert.Equal(s.Length - 1, book.Midpoints.Length);
            for (int i = 0; i < book.Midpoints.Length; i++)
            {
                Assert.True(s[i] < s[i + 1], $"{book}: sorted view must be strictly ascending at {i}");
                Assert.Equal((s[i] + s[i + 1]) * 0.5f, book.Midpoints[i]);
            }
            Assert.Equal(1 << book.Bits, book.SearchMidpoints.Length);
        }
    }

    // Brute force over the sorted view: nearest by exact (double) distance, ties to the lower position.
    private static int BruteForce(CodeBook book, float x)
    {
        var s = book.Sorted;
        int best = 0;
        for (int i = 1; i < s.Length; i++)
            if (Math.Abs((double)x - s[i]) < Math.Abs((double)x - s[best])) best = i;
        return book.SortedCodes[best];
    }

    [Fact]
    public void NearestIndexAgreesWithBruteForce()
    {
        var seed = Seeded.Create();
        foreach (var book in CodeBook.All)
        {
            var s = book.Sorted;
            var mids = book.Midpoints;
            for (int t = 0; t < 20000; t++)
            {
                float x = t % 4 == 0 ? seed.NextNormal() * 1e-3f : (float)(seed.Random.NextDouble() * 2.2 - 1.1);
                // Skip the sub-ulp window where an fp32 midpoint and the exact midpoint disagree (the rule is the fp32 one).
                if (mids.ToArray().Any(m => Math.Abs(m - x) <= Math.Abs(m) * 2.4e-7f)) continue;
                Assert.True(BruteForce(book, x) == book.NearestIndex(x), $"{book}: x={x:R} {seed.Tag}");
            }
            // Every exact midpoint takes the lower position; the next float above takes the upper one.
            for (int i = 0; i < mids.Length; i++)
            {
                Assert.Equal(book.SortedCodes[i], book.NearestIndex(mids[i]));
                Assert.Equal(book.SortedCodes[i + 1], book.NearestIndex(MathF.BitIncrement(mids[i])));
            }
            // Every value maps to itself; out-of-range values saturate.
            for (int i = 0; i < s.Length; i++) Assert.Equal(book.SortedCodes[i], book.NearestIndex(s[i]));
            Assert.Equal(book.SortedCodes[0], book.NearestIndex(-2f));
            Assert.Equal(book.SortedCodes[s.Length - 1], book.NearestIndex(2f));
            Assert.Equal(book.SortedCodes[s.Length - 1], book.NearestIndex(float.PositiveInfinity));
        }
    }

    private static void SearchKernel(Index1D i, ArrayView<float> mids, ArrayView<byte> codes, int bits, ArrayView<float> x, ArrayView<int> result) =>
        result[i] = codes[CodeBook.SearchPosition(mids, bits, x[i])];

    [Fact]
    public void KernelSearchEqualsHostSearch()
    {
        var seed = Seeded.Create();
        var device = Devices.CpuSmall;
        foreach (var book in CodeBook.All)
        {
            var xs = new List<float>();
            foreach (var m in book.Midpoints) { xs.Add(m); xs.Add(MathF.BitIncrement(m)); xs.Add(MathF.BitDecrement(m)); }
            xs.AddRange(seed.Uniform(500, -1.1f, 1.1f));
            xs.AddRange([0f, -0f, 1f, -1f, float.NaN, float.PositiveInfinity, float.NegativeInfinity]);
            var table = book.Upload(device);
            Assert.Same(table, book.Upload(device));
            using var x = device.Upload<float>(xs.ToArray());
            using var result = device.Allocate<int>(xs.Count);
            var kernel = device.GetKernel(("CodeBookTests.Search", 0), acc =>
                acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<byte>, int, ArrayView<float>, ArrayView<int>>(SearchKernel));
            kernel(xs.Count, table.SearchMidpoints, table.SortedCodes, book.Bits, x.Span.View, result.Span.View);
            var got = result.ToArray();
            for (int i = 0; i < xs.Count; i++)
                Assert.True(book.NearestIndex(xs[i]) == got[i], $"{book}: x={xs[i]:R} host {book.NearestIndex(xs[i])} kernel {got[i]} {seed.Tag}");
        }
    }

    [Fact]
    public void SearchCompilesToPtx()
    {
        var ptx = Ptx.Compile(Ptx.Method(typeof(CodeBookTests), nameof(SearchKernel)), explicitlyGrouped: false);
        Assert.Contains("setp.lt.f32", ptx);
        Assert.DoesNotContain("FusedMultiplyAdd", ptx);
    }
}
