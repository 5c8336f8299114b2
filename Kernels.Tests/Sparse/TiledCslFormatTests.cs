using Kernels.Sparse;
using Kernels.Tensors;
using Kernels.Tests.Harness;
using Xunit;

namespace Kernels.Tests.Sparse;

public class TiledCslFormatTests
{
    /// <summary>
    /// A 10×70 fp16 matrix: one tile row, two tile columns (K = 70 pads to 128), worked out by hand from the format
    /// (docs/flash-llm.md §1): word = fp16 bits | loc &lt;&lt; 16, loc = r·64 + (c XOR ((r &amp; 7) &lt;&lt; 3)); pads are
    /// +0 words at the first zero cells of a row-major scan, emitted where the scan meets them.
    /// </summary>
    [Fact]
    public void EncodesAHandWorkedMatrix()
    {
        const int m = 10, k = 70;
        var w = new float[m * k];
        w[0 * k + 1] = 1.0f;    // fp16 0x3C00, r 0, c 1: loc = 0 + (1 ^ 0) = 1
        w[1 * k + 0] = -2.0f;   // fp16 0xC000, r 1, c 0: loc = 64 + (0 ^ 8) = 72 = 0x48
        w[9 * k + 5] = 0.5f;    // fp16 0x3800, r 9, c 5: loc = 576 + (5 ^ 8) = 589 = 0x24D
        w[7 * k + 66] = -0.25f; // fp16 0xB400, tile 1, r 7, local c 2: loc = 448 + (2 ^ 56) = 506 = 0x1FA
        w[2 * k + 3] = -0.0f;   // −0 is a zero: not stored
        var arrays = TiledCslEncoder.Encode(SparseTestData.ToHalf(w), m, k);

        uint[] expectedWords =
        [
            // tile 0: 3 nonzeros → 1 pad; the scan meets zero cell (0,0) first, so the pad (loc 0) comes first.
            0x0000_0000, 0x0001_3C00, 0x0048_C000, 0x024D_3800,
            // tile 1: 1 nonzero → 3 pads at local (0,0), (0,1), (0,2): locs 0, 1, 2; then the nonzero at row 7.
            0x0000_0000, 0x0001_0000, 0x0002_0000, 0x01FA_B400,
        ];
        // T = 2 tiles: [0] = 0, cumulative vectors of 4 words (1, then 2), and the trailing empty tile repeats 2.
        int[] expectedOffsets = [0, 1, 2, 2];
        var (words, offsets) = arrays.ToFlashLlm();
        Compare.Exact<uint>(words, expectedWords, "words");
        Compare.Exact<int>(offsets, expectedOffsets, "tile offsets");
        Assert.Equal(4, arrays.Shape.NonzeroCount);
        Assert.Equal(4, arrays.Shape.MaxTileWords);
        Assert.Equal((128, 128), (arrays.Shape.PaddedRows, arrays.Shape.PaddedColumns));

        var dense = new System.Half[m * k];
        TiledCslDecoder.Decode<System.Half>(arrays, dense);
        var expected = SparseTestData.ToHalf(w);
        expected[2 * k + 3] = (System.Half)0f; // −0 reads back as +0 (documented policy)
        Compare.Exact<ushort>(dense.Select(BitConverter.HalfToUInt16Bits).ToArray(),
            expected.Select(BitConverter.HalfToUInt16Bits).ToArray(), "decoded");
    }

    [Theory]
    [InlineData(0.0, ElementType.Float16)]
    [InlineData(0.5, ElementType.Float16)]
    [InlineData(0.7, ElementType.BFloat16)]
    [InlineData(0.9, ElementType.Float16)]
    [InlineData(0.99, ElementType.BFloat16)]
    [InlineData(1.0, ElementType.Float16)]
    public void EncodeDecodeIsExact(double sparsity, ElementType valueType)
    {
        var seed = Seeded.Create();
        foreach (var (m, k) in new[] { (200, 100), (300, 200), (1, 1), (128, 64), (129, 65) })
        {
            var w = SparseTestData.Weights(seed, m, k, sparsity, valueType);
            var bits = SparseTestData.Bits(w, valueType);
            var arrays = valueType == ElementType.BFloat16
                ? TiledCslEncoder.Encode(SparseTestData.ToBFloat16(w), m, k)
                : TiledCslEncoder.Encode(SparseTestData.ToHalf(w), m, k);
            Assert.Equal(valueType, arrays.ValueType);
            Assert.Equal(bits.LongCount(b => (b & 0x7FFF) != 0), arrays.Shape.NonzeroCount);
            Assert.True(arrays.Shape.MaxTileWords <= 8192);
            Compare.Exact<ushort>(arrays.ToDenseBits(), bits, $"decode(encode) {m}×{k} at {sparsity:P0}", seed);
            // Our own output passes the validator and survives a Flash-LLM array round trip unchanged.
            var (words, offsets) = arrays.ToFlashLlm();
            var again = TiledCslArrays.FromFlashLlm(words, offsets, m, k, valueType);
            Compare.Exact<uint>(again.Words, words, "words after round trip", seed);
            Compare.Exact<int>(again.TileOffsets, offsets, "offsets after round trip", seed);
            Assert.Equal(arrays.Shape.NonzeroCount, again.Shape.NonzeroCount);
            Assert.Equal(arrays.Shape.MaxTileWords, again.Shape.MaxTileWords);
        }
    }

    [Fact]
    public void FullTilesHaveNoDensityCap()
    {
        var seed = Seeded.Create();
        var w = SparseTestData.Weights(seed, 256, 128, 0.0, ElementType.Float16);
        var arrays = TiledCslEncoder.Encode(SparseTestData.ToHalf(w), 256, 128);
        Assert.Equal(8192, arrays.Shape.MaxTileWords);
        Assert.Equal(1.0, arrays.Shape.WorstTileDensity);
        Assert.Equal(0.0, arrays.Shape.Sparsity);
        Compare.Exact<ushort>(arrays.ToDenseBits(), SparseTestData.Bits(w, ElementType.Float16), "dense tiles", seed);
    }

    [Theory]
    [InlineData(0.5)]
    [InlineData(0.7)]
    [InlineData(0.9)]
    [InlineData(1.0)]
    public void PrunesByMagnitudeToTheTarget(double target)
    {
        var seed = Seeded.Create();
        const int m = 200, k = 100;
        var w = SparseTestData.Weights(seed, m, k, 0.0, ElementType.BFloat16);
        // Force ties at some magnitudes so the tie rule is exercised.
        for (int i = 0; i < w.Length; i += 7) w[i] = (i & 1) == 0 ? 0.5f : -0.5f;
        var arrays = TiledCslEncoder.Encode(SparseTestData.ToBFloat16(w), m, k, target);
        long keep = (long)Math.Floor((1 - target) * m * k + 1e-9);
        Assert.Equal(keep, arrays.Shape.NonzeroCount);
        var kept = arrays.ToDenseBits();
        float minKept = float.PositiveInfinity, maxDropped = 0;
        for (int i = 0; i < w.Length; i++)
        {
            if ((kept[i] & 0x7FFF) != 0)
            {
                Assert.Equal(BFloat16.FromFloat(w[i]).Bits, kept[i]); // survivors keep their exact value
                minKept = Math.Min(minKept, Math.Abs(w[i]));
            }
            else maxDropped = Math.Max(maxDropped, Math.Abs(w[i]));
        }
        Assert.True(keep == 0 || minKept >= maxDropped, $"kept |w| ≥ {minKept} but dropped {maxDropped} {seed.Tag}");
    }

    [Fact]
    public void PruningKeepsAlreadySparseMatrices()
    {
        var seed = Seeded.Create();
        var w = SparseTestData.Weights(seed, 130, 70, 0.95, ElementType.Float16, clustered: false);
        var arrays = TiledCslEncoder.Encode(SparseTestData.ToHalf(w), 130, 70, targetSparsity: 0.5);
        Compare.Exact<ushort>(arrays.ToDenseBits(), SparseTestData.Bits(w, ElementType.Float16), "target below actual sparsity", seed);
    }

    [Fact]
    public void EncoderRejectsNaNAndBadArguments()
    {
        var w = new System.Half[6];
        w[4] = System.Half.NaN;
        var e = Assert.Throws<ArgumentException>(() => TiledCslEncoder.Encode<System.Half>(w, 2, 3));
        Assert.Equal("dense", e.ParamName);
        Assert.Contains("row 1, column 1", e.Message);
        var b = new BFloat16[6];
        b[0] = BFloat16.FromFloat(float.NaN);
        Assert.Throws<ArgumentException>(() => TiledCslEncoder.Encode<BFloat16>(b, 2, 3));
        Assert.Throws<ArgumentException>(() => TiledCslEncoder.Encode<System.Half>(new System.Half[5], 2, 3));
        Assert.Throws<ArgumentOutOfRangeException>(() => TiledCslEncoder.Encode<System.Half>(new System.Half[6], 2, 3, 1.5));
        Assert.Throws<ArgumentException>(() => TiledCslEncoder.Encode<float>(new float[6], 2, 3));
    }
}

public class TiledCslWordOrderTests
{
    /// <summary>
    /// Word order inside a tile only affects bank conflicts (Flash-LLM's reordering encoder deals words out by bank):
    /// arrays with every tile's words shuffled must validate and decode to the same matrix.
    /// </summary>
    [Fact]
    public void AnyWordOrderInsideATileDecodesTheSame()
    {
        var seed = Seeded.Create();
        var w = SparseTestData.Weights(seed, 300, 200, 0.8, ElementType.Float16);
        var arrays = TiledCslEncoder.Encode(SparseTestData.ToHalf(w), 300, 200);
        var (words, offsets) = arrays.ToFlashLlm();
        for (int t = 0; t + 1 < offsets.Length; t++)
            seed.Random.Shuffle(words.AsSpan(4 * offsets[t], 4 * (offsets[t + 1] - offsets[t])));
        var shuffled = TiledCslArrays.FromFlashLlm(words, offsets, 300, 200);
        Compare.Exact<ushort>(shuffled.ToDenseBits(), SparseTestData.Bits(w, ElementType.Float16), "shuffled tiles", seed);
    }
}

public class TiledCslBankSpreadTests
{
    /// <summary>
    /// The 10×70 matrix of <see cref="TiledCslFormatTests.EncodesAHandWorkedMatrix"/> in Flash-LLM's bank-spread order,
    /// worked by hand. Bank of a cell = swizzled column / 2. Tile 0: nonzeros 1.0 @ loc 1 (bank 0), −2.0 @ loc 72
    /// (swizzled column 8: bank 4), 0.5 @ loc 589 (column 13: bank 6). Its one pad goes to the first emptiest bank,
    /// bank 1, at that bank's first zero cell (0, 2): loc 2. Dealing 1 vector (a tail of one lane) takes, for words
    /// 0..3, the top of the first fullest bank: banks 0, 1, 4, 6; the lane's stack is written back last-in first-out.
    /// Tile 1: −0.25 @ loc 506 (swizzled column 58: bank 29); three pads to banks 0, 1, 2 at locs 0, 2, 4; dealt as
    /// banks 0, 1, 2, 29, written back reversed.
    /// </summary>
    [Fact]
    public void EncodesAHandWorkedMatrixInBankSpreadOrder()
    {
        const int m = 10, k = 70;
        var w = new float[m * k];
        w[0 * k + 1] = 1.0f;
        w[1 * k + 0] = -2.0f;
        w[9 * k + 5] = 0.5f;
        w[7 * k + 66] = -0.25f;
        w[2 * k + 3] = -0.0f;
        var arrays = TiledCslEncoder.Encode(SparseTestData.ToHalf(w), m, k, wordOrder: TiledCslWordOrder.BankSpread);
        uint[] expected =
        [
            0x024D_3800, 0x0048_C000, 0x0002_0000, 0x0001_3C00,
            0x01FA_B400, 0x0004_0000, 0x0002_0000, 0x0000_0000,
        ];
        var (words, offsets) = arrays.ToFlashLlm();
        Compare.Exact<uint>(words, expected, "bank-spread words");
        Compare.Exact<int>(offsets, [0, 1, 2, 2], "tile offsets");
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(0.6)]
    [InlineData(0.9)]
    public void DecodesExactlyAndSpreadsScatterStoresOverBanks(double sparsity)
    {
        var seed = Seeded.Create();
        const int m = 256, k = 200;
        var w = SparseTestData.Weights(seed, m, k, sparsity, ElementType.Float16);
        var plain = TiledCslEncoder.Encode(SparseTestData.ToHalf(w), m, k);
        var spread = TiledCslEncoder.Encode(SparseTestData.ToHalf(w), m, k, wordOrder: TiledCslWordOrder.BankSpread);
        Compare.Exact<ushort>(spread.ToDenseBits(), SparseTestData.Bits(w, ElementType.Float16), "bank-spread decode", seed);
        Compare.Exact<int>(spread.TileOffsets, plain.TileOffsets, "offsets do not depend on the order", seed);
        TiledCslArrays.FromFlashLlm(spread.Words, spread.TileOffsets, m, k); // validates
        // Conflict degree of the kernel's scatter: per warp instruction (32 consecutive vectors, word v of each), the
        // most stores that hit one bank. Bank spreading must not be worse than the plain order, and better overall.
        long Conflicts(TiledCslArrays a)
        {
            long sum = 0;
            var o = a.TileOffsets;
            var words = a.Words;
            Span<int> hits = stackalloc int[32];
            for (int t = 0; t + 2 < o.Length; t++)
                for (int g = o[t]; g < o[t + 1]; g += 32)
                    for (int v = 0; v < 4; v++)
                    {
                        hits.Clear();
                        int most = 0;
                        for (int l = g; l < Math.Min(g + 32, o[t + 1]); l++)
                            most = Math.Max(most, ++hits[(TiledCsl.LocationOf(words[4 * l + v]) & 63) >> 1]);
                        sum += most;
                    }
            return sum;
        }
        long a = Conflicts(plain), b = Conflicts(spread);
        Assert.True(b <= a, $"bank spread {b} vs plain {a} {seed.Tag}");
        if (sparsity < 1 && a > 0) Assert.True(b < a, $"bank spread {b} should beat plain {a} {seed.Tag}");
    }
}
