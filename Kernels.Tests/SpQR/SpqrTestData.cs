using Kernels.SpQR;
using Kernels.Tests.Harness;

namespace Kernels.Tests.SpQR;

/// <summary>Test matrices: integer-valued ones with a closed-form expected W, and encoder output from random weights.</summary>
internal static class SpqrTestData
{
    // Second-order statistics chosen so every step is an exact small integer:
    // ŝ = 2·(s_code − 1) ∈ {−2..12}, ẑ = 1·(z_code − 2) ∈ {−2..5}, ŵ = ŝ·(q − ẑ).
    public static readonly SecondOrderStats IntegerStats = SecondOrderStats.From(
        scaleOfScales: 0x4000 /* 2 */, scaleOfZeros: 0x3C00 /* 1 */, zeroOfScales: 0x3C00 /* 1 */, zeroOfZeros: 0x4000 /* 2 */);

    /// <summary>The closed form of the integer data, written independently of the library's decoder.</summary>
    public static float IntegerWeight(int scaleCode, int zeroCode, int q) => 2 * (scaleCode - 1) * (q - (zeroCode - 2));

    /// <summary>
    /// An integer-valued matrix: codes cycle through 0..7 in every row and column, scale and zero codes through 0..7,
    /// a random permutation, and a few integer outliers. Returns the unpacked fields and the expected dense W
    /// (original column order) computed from the closed form.
    /// </summary>
    public static (SpqrUnpacked Unpacked, float[] ExpectedW) Integer(int rows, int columns, Seeded seed, double outlierRate = 0.05, bool permute = true)
    {
        var u = new SpqrUnpacked(rows, columns);
        for (int t = 0; t < u.Stats.Length; t++) u.Stats[t] = IntegerStats;
        int o1 = seed.Next(0, 8), o2 = seed.Next(0, 8), o3 = seed.Next(0, 8);
        for (int r = 0; r < u.PaddedRows; r++)
        {
            for (int c = 0; c < u.TileColumns; c++)
            {
                u.ScaleCodes[r * u.TileColumns + c] = (byte)((r + 3 * c + o1) & 7);
                u.ZeroCodes[r * u.TileColumns + c] = (byte)((5 * r + c + o2) & 7);
            }
            for (int j = 0; j < u.PaddedColumns; j++) u.Codes[r * u.PaddedColumns + j] = (byte)((r + j + o3 + seed.Next(0, 2) * 3) & 7);
        }
        if (permute)
        {
            var p = Enumerable.Range(0, columns).ToArray();
            seed.Random.Shuffle(p);
            u.Permutation = p.Select(v => (ushort)v).ToArray();
        }
        var offsets = new int[rows + 1];
        var cols = new List<ushort>();
        var vals = new List<ushort>();
        for (int r = 0; r < rows; r++)
        {
            for (int j = 0; j < columns; j++)
            {
                if (seed.Random.NextDouble() >= outlierRate) continue;
                cols.Add((ushort)j);
                int v = seed.Next(-3, 4);
                vals.Add(BitConverter.HalfToUInt16Bits((Half)(v == 0 ? 5 : v)));
            }
            offsets[r + 1] = cols.Count;
        }
        u.OutlierRowOffsets = offsets;
        u.OutlierColumns = cols.ToArray();
        u.OutlierValues = vals.ToArray();

        var w = new float[rows * columns];
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < columns; j++)
                w[r * columns + u.Permutation[j]] = IntegerWeight(
                    u.ScaleCodes[r * u.TileColumns + j / 16], u.ZeroCodes[r * u.TileColumns + j / 16], u.Codes[r * u.PaddedColumns + j]);
        for (int r = 0; r < rows; r++)
            for (int e = offsets[r]; e < offsets[r + 1]; e++)
                w[r * columns + u.Permutation[cols[e]]] += (float)BitConverter.UInt16BitsToHalf(vals[e]);
        return (u, w);
    }

    /// <summary>Encoder output for normal weights with a few large ones (outlier candidates).</summary>
    public static (SpqrPacked Packed, float[] W) Random(int rows, int columns, Seeded seed, SpqrSparseLayout layout = SpqrSparseLayout.Csr,
        bool importance = true)
    {
        var w = seed.Normal((long)rows * columns, 0.02f);
        for (int i = 0; i < w.Length / 100 + 1; i++) w[seed.Next(0, w.Length)] *= 20;
        var options = new SpqrEncoderOptions
        {
            OutlierFraction = 0.01,
            ColumnImportance = importance ? seed.Uniform(columns, 0.1f, 2f) : null,
        };
        return (SpqrEncoder.Encode(w, rows, columns, options, layout), w);
    }

    /// <summary>Integer activations in [−6, 6] (exact products and sums).</summary>
    public static Half[] IntegerX(int n, Seeded seed) => Enumerable.Range(0, n).Select(_ => (Half)seed.Next(-6, 7)).ToArray();

    /// <summary>Normal activations rounded to fp16.</summary>
    public static Half[] RandomX(int n, Seeded seed) => seed.Normal(n).Select(v => (Half)v).ToArray();
}
