using System.Globalization;
using Kernels.SpQR;
using Kernels.Tensors;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Bench.Tour;

/// <summary>
/// SpQR rows: decode to dense fp16, the fused GEMV (one token) and the batched GEMM on the tile engine, each verified
/// against the CPU reference. GPU: LLaMA-7B layer shapes with synthetic packed data (0.5 % outliers, a random
/// permutation); CPU: small encoder-made matrices. Compulsory bytes = compressed weight bytes + x + y.
/// </summary>
public sealed class SpqrTour : ITourSuite
{
    /// <inheritdoc />
    public string Family => "SpQR";

    /// <inheritdoc />
    public IEnumerable<TourCase> Cases(TourContext context)
    {
        var shapes = context.Full
            ? new[] { (4096, 4096), (11008, 4096), (4096, 11008) }
            : new[] { (40, 136) }; // one awkward shape (m, n not multiples of 16 or 64): the CPU accelerator is slow
        int[] batches = context.Full ? [16, 64] : [4];
        foreach (var (m, n) in shapes)
        {
            var matrix = new Lazy<SpqrPacked>(() => SpqrTourData.Make(m, n, context.Full), LazyThreadSafetyMode.ExecutionAndPublication);
            string shape = $"M={m} K={n}";
            // Exact for the synthetic full-size data; small shapes build their (cheap) matrix now to count its bytes.
            double weightBytes = context.Full ? SpqrTourData.CompressedBytes(m, n) : matrix.Value.CompressedBytes;
            yield return TourCase.Of("spqr decode", shape, "f16", 0, weightBytes + 2.0 * m * n, d => SpqrTourData.Decode(d, matrix.Value));
            yield return TourCase.Of("spqr gemv", shape + " N=1", "f16", 2.0 * m * n, weightBytes + 2.0 * n + 2.0 * m,
                d => SpqrTourData.Gemv(d, matrix.Value));
            foreach (int tokens in batches)
                yield return TourCase.Of("spqr gemm", shape + $" N={tokens}", "f16", 2.0 * m * n * tokens,
                    weightBytes + 2.0 * n * tokens + 2.0 * m * tokens, d => SpqrTourData.Gemm(d, matrix.Value, tokens));
        }
    }
}

/// <summary>Data and runs of the SpQR tour rows.</summary>
internal static class SpqrTourData
{
    private const double OutlierRate = 0.005;

    /// <summary>Bytes of the packed matrix with CSR outliers at <see cref="OutlierRate"/> (known before it is built).</summary>
    public static double CompressedBytes(int m, int n) =>
        8.0 * SpqrLayout.DenseWords(m, n) + 4.0 * (m + 1) + 4.0 * Math.Round(OutlierRate * m * n) + 4.0 * ((n + 1) / 2);

    /// <summary>Small shapes: the RTN encoder on Gaussian weights. Full shapes: random packed fields (encoding 45M weights on the host would dominate the run).</summary>
    public static SpqrPacked Make(int m, int n, bool full)
    {
        var random = new Random(m * 31 + n);
        if (!full)
        {
            var w = new float[m * n];
            for (int i = 0; i < w.Length; i++) w[i] = (float)(0.02 * Normal(random));
            var importance = new float[n];
            for (int j = 0; j < n; j++) importance[j] = (float)random.NextDouble() + 0.1f;
            return SpqrEncoder.Encode(w, m, n, new SpqrEncoderOptions { OutlierFraction = OutlierRate, ColumnImportance = importance });
        }
        var u = new SpqrUnpacked(m, n);
        random.NextBytes(u.Codes);
        for (int i = 0; i < u.Codes.Length; i++) u.Codes[i] &= 7;
        random.NextBytes(u.ScaleCodes);
        random.NextBytes(u.ZeroCodes);
        for (int i = 0; i < u.ScaleCodes.Length; i++) { u.ScaleCodes[i] &= 7; u.ZeroCodes[i] &= 7; }
        for (int t = 0; t < u.Stats.Length; t++)
        {
            // ŝ = S_s·(code + 1) with S_s ≈ 0.001, ẑ = S_z·(code − Z_z) near the middle of 0..7
            ushort ss = BitConverter.HalfToUInt16Bits((Half)(0.0008 + 0.0004 * random.NextDouble()));
            ushort sz = BitConverter.HalfToUInt16Bits((Half)(0.5 + 0.2 * random.NextDouble()));
            u.Stats[t] = SecondOrderStats.From(ss, sz, 0xBC00 /* −1 */, BitConverter.HalfToUInt16Bits((Half)(-3.0)));
        }
        var perm = Enumerable.Range(0, n).ToArray();
        random.Shuffle(perm);
        u.Permutation = perm.Select(p => (ushort)p).ToArray();
        long budget = (long)Math.Round(OutlierRate * m * n);
        var offsets = new int[m + 1];
        var cols = new ushort[budget];
        var vals = new ushort[budget];
        long e = 0;
        for (int r = 0; r < m; r++)
        {
            long end = budget * (r + 1) / m;
            int count = (int)(end - e);
            var chosen = new SortedSet<int>();
            while (chosen.Count < count) chosen.Add(random.Next(n));
            foreach (int c in chosen)
            {
                cols[e] = (ushort)c;
                vals[e] = BitConverter.HalfToUInt16Bits((Half)((random.NextDouble() - 0.5) * 0.2 + (random.Next(2) == 0 ? 0.05 : -0.05)));
                e++;
            }
            offsets[r + 1] = (int)e;
        }
        u.OutlierRowOffsets = offsets;
        u.OutlierColumns = cols;
        u.OutlierValues = vals;
        return SpqrPacking.Pack(u);
    }

    private static double Normal(Random r) => Math.Sqrt(-2 * Math.Log(1 - r.NextDouble())) * Math.Cos(2 * Math.PI * r.NextDouble());

    private static Half[] Activations(int count, int seed)
    {
        var r = new Random(seed);
        var x = new Half[count];
        for (int i = 0; i < x.Length; i++) x[i] = (Half)Normal(r);
        return x;
    }

    /// <summary>
    /// Copies of the matrix on the device, enough that cycling through them exceeds twice the L2 cache (docs/design.md §6:
    /// timings must not be cache hits); one on the CPU accelerator.
    /// </summary>
    private static SpqrMatrix[] Rotation(TourBuffers d, SpqrPacked p)
    {
        var device = d.Device;
        long l2 = device.Facts.L2CacheBytes > 0 ? device.Facts.L2CacheBytes : 64L << 20; // assume a large L2 when unknown
        int copies = device.IsCuda ? (int)Math.Min(16, 2 * l2 / Math.Max(1, p.CompressedBytes) + 1) : 1;
        var result = new SpqrMatrix[copies];
        for (int i = 0; i < copies; i++) result[i] = d.Own(new SpqrMatrix(device, p));
        return result;
    }

    private static (string, string)[] Notes(SpqrPacked p, string path, int copies) =>
    [
        ("weightCopies", copies.ToString(CultureInfo.InvariantCulture)),
        ("bits/weight", p.BitsPerWeight.ToString("F3", CultureInfo.InvariantCulture)),
        ("outliers", (100.0 * p.OutlierCount / ((double)p.Rows * p.Columns)).ToString("F2", CultureInfo.InvariantCulture) + "%"),
        ("path", path),
    ];

    private static double RelativeError(Half[] actual, double[] expected) =>
        TourData.RelativeError(Array.ConvertAll(actual, h => (float)h), expected);

    public static TourRun Decode(TourBuffers d, SpqrPacked p)
    {
        var matrices = Rotation(d, p);
        int next = 0;
        var output = d.Allocate<DeviceHalf>(p.Rows, p.Columns);
        return d.Run(() => Spqr.Decode(matrices[next++ % matrices.Length], output), () =>
        {
            var expected = new Half[p.Rows * p.Columns];
            SpqrReference.Decode(p, expected);
            var got = new Half[expected.Length];
            output.CopyTo(got);
            for (int i = 0; i < got.Length; i++)
                if (BitConverter.HalfToUInt16Bits(got[i]) != BitConverter.HalfToUInt16Bits(expected[i])) return double.PositiveInfinity;
            return 0;
        }, 0, Notes(p, "bit-exact decode", matrices.Length));
    }

    public static TourRun Gemv(TourBuffers d, SpqrPacked p)
    {
        var matrices = Rotation(d, p);
        int next = 0;
        var xh = Activations(p.Columns, 7);
        var x = d.Own(DeviceTensor.FromHalf(d.Device, xh, p.Columns));
        var y = d.Allocate<DeviceHalf>(p.Rows);
        return d.Run(() => Spqr.Gemv(matrices[next++ % matrices.Length], x, y), () =>
        {
            var got = new Half[p.Rows];
            y.CopyTo(got);
            return RelativeError(got, SpqrReference.GemvSums(p, xh));
        }, 2e-3, Notes(p, "fused gemv", matrices.Length));
    }

    public static TourRun Gemm(TourBuffers d, SpqrPacked p, int tokens)
    {
        var matrices = Rotation(d, p);
        int next = 0;
        var xh = Activations(tokens * p.Columns, 11);
        var x = d.Own(DeviceTensor.FromHalf(d.Device, xh, tokens, p.Columns));
        var y = d.Allocate<DeviceHalf>(tokens, p.Rows);
        return d.Run(() => Spqr.Gemm(matrices[next++ % matrices.Length], x, y), () =>
        {
            var got = new Half[tokens * p.Rows];
            y.CopyTo(got);
            return RelativeError(got, SpqrReference.GemmSums(p, xh, tokens));
        }, 2e-3, Notes(p, "tile engine, SpQR producer", matrices.Length));
    }
}
