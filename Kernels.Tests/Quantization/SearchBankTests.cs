using Kernels.Quantization;
using Kernels.Tests.Harness;
using Xunit;

namespace Kernels.Tests.Quantization;

/// <summary>
/// A host model of the shared-memory traffic of the nearest-code search (the quantize kernel and the 8-bit optimizer's
/// requantization): per level of the binary search, the word indices the 32 lanes of a warp read, and the serialization
/// degree of that load, the largest number of distinct words any one of the 32 four-byte banks must serve (same-word
/// reads broadcast). The sorted layout the library used before (step s: word pos + s − 1) is modelled next to the
/// breadth-first table <see cref="CodeBook.SearchMidpoints"/> (word k, then 2k or 2k + 1).
/// </summary>
public class SearchBankTests(ITestOutputHelper output)
{
    private const int Banks = 32, Lanes = 32, Warps = 4000;

    // The search over the sorted layout (the +∞-padded ascending midpoints), recording the word of each level.
    private static int SortedSearch(float[] sortedPadded, int bits, float y, int[] words)
    {
        int pos = 0, level = 0;
        for (int step = 1 << (bits - 1); step > 0; step >>= 1)
        {
            int word = pos + step - 1;
            words[level++] = word;
            if (sortedPadded[word] < y) pos += step;
        }
        return pos;
    }

    // The search over the breadth-first table exactly as CodeBook.SearchPosition walks it, recording the words.
    private static int BreadthFirstSearch(ReadOnlySpan<float> tree, int bits, float y, int[] words)
    {
        int k = 1;
        for (int level = 0; level < bits; level++)
        {
            words[level] = k;
            k = 2 * k + (tree[k] < y ? 1 : 0);
        }
        return k - (1 << bits);
    }

    // Largest number of distinct words in one bank. The table's base address only rotates the banks, which changes
    // no count, so words are taken relative to it.
    private static int Degree(IEnumerable<int> words) =>
        words.Distinct().GroupBy(w => w % Banks).Max(g => g.Count());

    private readonly record struct Profile(int[] Max, double[] Mean)
    {
        public double Wavefronts(int fromLevel) => Mean.Skip(fromLevel).Sum();
    }

    private static (Profile Sorted, Profile BreadthFirst) Measure(CodeBook book, Func<float> draw, Seeded seed)
    {
        int bits = book.Bits;
        var sortedPadded = new float[(1 << bits) - 1];
        Array.Fill(sortedPadded, float.PositiveInfinity);
        book.Midpoints.CopyTo(sortedPadded);
        var tree = book.SearchMidpoints.ToArray();
        var mids = book.Midpoints.ToArray();
        var sortedWords = new int[Lanes][];
        var treeWords = new int[Lanes][];
        for (int l = 0; l < Lanes; l++) { sortedWords[l] = new int[bits]; treeWords[l] = new int[bits]; }
        var sortedProfile = new Profile(new int[bits], new double[bits]);
        var treeProfile = new Profile(new int[bits], new double[bits]);
        for (int w = 0; w < Warps; w++)
        {
            for (int l = 0; l < Lanes; l++)
            {
                float y = draw();
                int expected = mids.Count(m => m < y); // the definition: midpoints strictly below y
                int a = SortedSearch(sortedPadded, bits, y, sortedWords[l]);
                int b = BreadthFirstSearch(tree, bits, y, treeWords[l]);
                Assert.True(a == expected && b == expected && CodeBook.SearchPosition(book.SearchMidpoints, bits, y) == expected,
                    $"{book}: y={y:R} sorted {a} breadth-first {b} expected {expected} {seed.Tag}");
            }
            for (int level = 0; level < bits; level++)
            {
                int ds = Degree(sortedWords.Select(x => x[level]));
                int dt = Degree(treeWords.Select(x => x[level]));
                sortedProfile.Max[level] = Math.Max(sortedProfile.Max[level], ds);
                treeProfile.Max[level] = Math.Max(treeProfile.Max[level], dt);
                sortedProfile.Mean[level] += ds / (double)Warps;
                treeProfile.Mean[level] += dt / (double)Warps;
            }
        }
        return (sortedProfile, treeProfile);
    }

    public static TheoryData<string, string> Cases() => new()
    {
        { "dynamic-signed", "uniform" },
        { "dynamic-signed", "normal" },
        { "dynamic-unsigned", "uniform" },
        { "linear-signed", "uniform" },
        { "nf4", "normal" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void BreadthFirstTableSpreadsEveryLevelOverTheBanks(string bookName, string inputs)
    {
        var seed = Seeded.Create();
        var book = CodeBook.All.Single(b => b.Name == bookName);
        bool unsigned = book.Values[0] >= 0;
        // "normal": a block of N(0,1) divided by its absmax (4096 samples: about 3.7σ), as quantization sees weights.
        var block = seed.Normal(4096);
        float absmax = block.Max(MathF.Abs);
        int next = 0;
        Func<float> draw = inputs == "uniform"
            ? () => (float)(unsigned ? seed.Random.NextDouble() : 2 * seed.Random.NextDouble() - 1)
            : () => { float v = block[next++ & 4095] / absmax; return unsigned ? MathF.Abs(v) : v; };
        var (sorted, tree) = Measure(book, draw, seed);

        static string Row(Profile p) => string.Join(" ", p.Mean.Select((m, l) => $"L{l}:{m:F2}/{p.Max[l]}"));
        output.WriteLine($"{book} {inputs}: mean/max serialization degree per level");
        output.WriteLine($"  sorted        {Row(sorted)}  wavefronts/search {sorted.Wavefronts(0):F2} (levels 2+: {sorted.Wavefronts(2):F2})");
        output.WriteLine($"  breadth-first {Row(tree)}  wavefronts/search {tree.Wavefronts(0):F2} (levels 2+: {tree.Wavefronts(2):F2})");

        // The bound: level l reads one of 2^l consecutive words, so at most ⌈2^l / 32⌉ of them share a bank
        // (1 for levels 0–5, 2 for level 6, 4 for level 7), whatever the inputs.
        for (int level = 0; level < book.Bits; level++)
            Assert.True(tree.Max[level] <= Math.Max(1, (1 << level) / Banks),
                $"{book} {inputs}: level {level} degree {tree.Max[level]} > bound {Math.Max(1, (1 << level) / Banks)} {seed.Tag}");
        if (book.Bits == 8)
        {
            // The sorted layout puts all words of levels 1–3 on one bank (63 and 191; 31, 95, 159, 223; 15 … 239) and
            // 8 words on each bank that levels 4–7 use: the model must see that, and the breadth-first table must need
            // fewer wavefronts.
            Assert.True(sorted.Max.Max() >= 4, $"{book} {inputs}: the model found no conflict in the sorted layout {seed.Tag}");
            Assert.True(tree.Wavefronts(0) < 0.75 * sorted.Wavefronts(0),
                $"{book} {inputs}: breadth-first {tree.Wavefronts(0):F2} vs sorted {sorted.Wavefronts(0):F2} wavefronts {seed.Tag}");
        }
    }
}
