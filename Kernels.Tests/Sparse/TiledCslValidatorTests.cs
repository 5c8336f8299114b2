using Kernels.Sparse;
using Kernels.Tensors;
using Kernels.Tests.Harness;
using Xunit;

namespace Kernels.Tests.Sparse;

public class TiledCslValidatorTests
{
    private const int M = 200, K = 100; // 2×2 tiles

    private static (uint[] Words, int[] Offsets) Valid(Seeded seed)
    {
        var w = SparseTestData.Weights(seed, M, K, 0.9, ElementType.Float16, clustered: false);
        w[0] = 0.75f; // tile 0 holds a nonzero at local (0, 0), location 0
        w[1] = 0f;    // and a zero at (0, 1), location 1
        return TiledCslEncoder.Encode(SparseTestData.ToHalf(w), M, K).ToFlashLlm();
    }

    private static void Rejects(uint[] words, int[] offsets, string parameter, string fragment, int rows = M, int columns = K)
    {
        var e = Assert.Throws<ArgumentException>(() => TiledCslArrays.FromFlashLlm(words, offsets, rows, columns));
        Assert.Equal(parameter, e.ParamName);
        Assert.Contains(fragment, e.Message);
    }

    [Fact]
    public void AcceptsValidArrays()
    {
        var (w, o) = Valid(Seeded.Create());
        Assert.Equal(M, TiledCslArrays.FromFlashLlm(w, o, M, K).Rows);
    }

    [Fact]
    public void RejectsCorruptOffsets()
    {
        var seed = Seeded.Create();
        var (w, o) = Valid(seed);
        Rejects(w, o[..^1], "tileOffsets", "needs 6");
        Rejects(w, [.. o, o[^1]], "tileOffsets", "needs 6");
        var bad = (int[])o.Clone(); bad[0] = 1;
        Rejects(w, bad, "tileOffsets", "must be 0");
        bad = (int[])o.Clone(); bad[2] = bad[1] - 1;
        Rejects(w, bad, "tileOffsets", "decreases");
        bad = (int[])o.Clone(); bad[5] = bad[4] + 1;
        Rejects(w, bad, "tileOffsets", "trailing empty tile");
        bad = (int[])o.Clone(); bad[4] += 1; bad[5] += 1;
        Rejects(w, bad, "words", "need exactly");
        Rejects(w[..^4], o, "words", "need exactly");
        // A matrix whose claimed shape has a different tile count.
        Rejects(w, o, "tileOffsets", "has 6 entries", rows: 300);
    }

    [Fact]
    public void RejectsCorruptWords()
    {
        var seed = Seeded.Create();
        var (w, o) = Valid(seed);
        int first = Array.FindIndex(w, x => TiledCsl.LocationOf(x) == 0 && !TiledCsl.IsZero(TiledCsl.ValueBits(x)));
        Assert.True(first >= 0);

        var bad = (uint[])w.Clone(); bad[first] = TiledCsl.Word(0x3C00, 0) | (8192u << 16);
        Rejects(bad, o, "words", "location 8192");
        bad = (uint[])w.Clone(); bad[first] = 0xFFFF_3C00;
        Rejects(bad, o, "words", "outside the 8192 cells");
        bad = (uint[])w.Clone(); bad[first] = TiledCsl.Word(0x7E00, 0); // fp16 NaN
        Rejects(bad, o, "words", "NaN");
        // Two nonzeros on one cell would race in the scatter.
        bad = (uint[])w.Clone();
        int second = Array.FindIndex(w, first + 1, x => !TiledCsl.IsZero(TiledCsl.ValueBits(x)));
        Assert.True(second > first && second < 4 * o[1], "tile 0 needs two nonzeros");
        bad[second] = TiledCsl.Word(0x3C00, 0);
        Rejects(bad, o, "words", "repeats location 0");
        // A pad on a nonzero's cell would zero it, depending on scheduling.
        bad = (uint[])w.Clone(); bad[second] = TiledCsl.Word(0, 0);
        Rejects(bad, o, "words", "zero pad at location 0");
        // A nonzero in the padded edge (row 199 is the last true row: local row 71 of tile row 1; row 72 is padding).
        bad = (uint[])w.Clone();
        int inTile2 = 4 * o[2];
        Assert.True(inTile2 < 4 * o[3], "tile 2 must hold words");
        bad[inTile2] = TiledCsl.Word(0x3C00, TiledCsl.Location(72, 3));
        Rejects(bad, o, "words", "outside the true 200×100 shape");
        // And one past K: tile 3 is tile row 1, tile column 1.
        bad = (uint[])w.Clone();
        int inTile3 = 4 * o[3];
        Assert.True(inTile3 < 4 * o[4], "tile 3 must hold words");
        bad[inTile3] = TiledCsl.Word(0x3C00, TiledCsl.Location(5, 40)); // column 64 + 40 = 104 ≥ K = 100
        Rejects(bad, o, "words", "outside the true 200×100 shape");
    }

    [Fact]
    public void RejectsTilesAboveTheCellCount()
    {
        // One tile of 8196 words (2049 vectors): more words than cells.
        var words = new uint[8196];
        for (int i = 0; i < words.Length; i++) words[i] = TiledCsl.Word(0, i % 8192);
        Rejects(words, [0, 2049, 2049], "tileOffsets", "more than the 8192 cells", rows: 100, columns: 60);
    }

    [Fact]
    public void AcceptsFlashLlmPadsIncludingNegativeZeroAndRepeatedPadCells()
    {
        // Flash-LLM's no-reorder encoder copies the cell's own zero (possibly −0) into a pad; its reordering encoder may
        // put two pads on the same zero cell. Both are harmless and accepted.
        uint[] words = [TiledCsl.Word(0x8000, 5), TiledCsl.Word(0, 5), TiledCsl.Word(0, 6), TiledCsl.Word(0x3C00, 7)];
        var arrays = TiledCslArrays.FromFlashLlm(words, [0, 1, 1], 3, 8);
        Assert.Equal(1, arrays.Shape.NonzeroCount);
        var dense = arrays.ToDenseBits(); // row 0: locations 5, 6, 7 are columns 5, 6, 7 (no swizzle in row 0)
        Assert.Equal(0x3C00, dense[7]);
        Assert.True(TiledCsl.IsZero(dense[5]) && dense[6] == 0);
        Assert.Equal(1, dense.Count(b => b != 0 && b != 0x8000));
    }
}
