using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using Kernels.Sparse;
using Kernels.Tensors;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Bench.Tour;

/// <summary>
/// Tour rows of the Sparse family: SpMM (Y = X·Wᵀ, W in Tiled-CSL) at Flash-LLM's OPT-30B shapes and sparsities on a
/// GPU, small shapes on the CPU accelerator. Compulsory bytes = Tiled-CSL words and offsets + X + Y (the sparse path's
/// floor; the dense path must move 2·M·K instead, which the notes state as the byte-model bound).
/// </summary>
public sealed class SparseTour : ITourSuite
{
    /// <inheritdoc />
    public string Family => "Sparse";

    // Encoded weights are shared by the rows of one (shape, sparsity): encoding OPT-30B's FFN matrix takes seconds.
    private static readonly ConcurrentDictionary<(int M, int K, double S), TiledCslArrays> Weights = new();

    /// <inheritdoc />
    public IEnumerable<TourCase> Cases(TourContext context)
    {
        if (!context.Full)
        {
            // Two rows (a CPU launch of the engine costs about a second): the sparse path and the dense fallback.
            yield return Case(200, 100, 3, 0.9, SpMMPath.Auto, full: false);
            yield return Case(200, 100, 8, 0.3, SpMMPath.Auto, full: false);
            yield break;
        }
        foreach (var (m, k) in new[] { (7168, 7168), (28672, 7168) })
            foreach (double s in new[] { 0.7, 0.8, 0.9 })
                foreach (int n in new[] { 8, 16, 32 })
                    yield return Case(m, k, n, s, SpMMPath.Auto, full: true);
        foreach (var (m, k) in new[] { (7168, 7168), (28672, 7168) })
        {
            yield return Case(m, k, 16, 0.8, SpMMPath.Sparse, full: true);
            yield return Case(m, k, 16, 0.8, SpMMPath.Dense, full: true);
        }
    }

    private static TourCase Case(int m, int k, int n, double sparsity, SpMMPath path, bool full)
    {
        long tiles = (long)((m + 127) / 128) * ((k + 63) / 64);
        double expectedWords = Math.Ceiling((1 - sparsity) * m * k);
        return TourCase.Of($"SpMM {sparsity:P0}" + (path == SpMMPath.Auto ? "" : $" {path.ToString().ToLowerInvariant()} forced"),
            $"M={m} K={k} N={n}", "f16", 2.0 * m * n * k,
            // Words at the target sparsity (pads add < 4 a tile) + offsets + X + Y.
            4 * expectedWords + 4.0 * (tiles + 2) + 2.0 * n * k + 2.0 * n * m,
            d => Setup(d, m, k, n, sparsity, path, full));
    }

    private static TourRun Setup(TourBuffers d, int m, int k, int n, double sparsity, SpMMPath path, bool full)
    {
        var device = d.Device;
        var host = Weights.GetOrAdd((m, k, sparsity), key => Generate(key.M, key.K, key.S));
        var random = new Random(n * 7919 + m);
        var xf = new float[(long)n * k];
        for (int i = 0; i < xf.Length; i++) xf[i] = (float)(DeviceHalf)(random.NextSingle() * 2 - 1);
        // Rotate weight copies past twice the L2 cache (as the Dense rows do): at 90 % a 7168² matrix is ~21 MB of words and
        // would otherwise be timed from L2 (docs/flash-llm.md §4). The dense path's copies each hold their dense cache.
        long weightBytes = path == SpMMPath.Dense ? 2L * m * k : host.Shape.ByteLength;
        int copies = device.IsCuda ? (int)Math.Clamp(2 * device.Facts.L2CacheBytes / Math.Max(1, weightBytes) + 1, 1, 16) : 1;
        var matrices = Enumerable.Range(0, copies).Select(_ => d.Own(TiledCslMatrix.Upload(device, host))).ToArray();
        var matrix = matrices[0];
        int next = 0;
        var x = d.Upload<DeviceHalf>(xf.Select(v => (DeviceHalf)v).ToArray(), n, k);
        var y = d.Allocate<DeviceHalf>(n, m);
        var plan = SpMM.Plan(matrix, n, path);
        // Full shapes: the f64 oracle checks the first two tile rows and the last (enough to see any tiling error).
        var ranges = full ? new[] { (0, 256), (m - 128, m) } : new[] { (0, m) };
        var run = d.Run(() =>
            {
                var w = matrices[next];
                next = (next + 1) % copies;
                SpMM.Multiply(x.ReadOnlySpan, w, y.Span, path);
            }, () =>
            {
                var actual = y.ToArray();
                var expected = new double[(long)n * m];
                foreach (var (a, b) in ranges) SpMMReference.Multiply(xf, host, expected, a, b);
                var got = new List<float>();
                var want = new List<double>();
                foreach (var (a, b) in ranges)
                    for (int t = 0; t < n; t++)
                        for (int r = a; r < b; r++)
                        {
                            got.Add((float)actual[(long)t * m + r]);
                            want.Add(expected[(long)t * m + r]);
                        }
                return TourData.RelativeError(CollectionsMarshal.AsSpan(got), CollectionsMarshal.AsSpan(want));
            }, 2e-3);
        run.Notes["path"] = plan.Path.ToString().ToLowerInvariant() + (path == SpMMPath.Auto ? "" : " (forced)");
        run.Notes["splitK"] = plan.Splits.ToString();
        // The byte model's verdict, and the bound pure traffic puts on any sparse speed-up (dense bytes / sparse bytes).
        run.Notes["model speedup"] = $"{plan.Estimate.SparseSpeedup:F2}x";
        run.Notes["traffic bound"] = $"{plan.Estimate.DenseCompulsoryBytes / plan.Estimate.SparseCompulsoryBytes:F2}x";
        run.Notes["worst tile"] = $"{matrix.Shape.WorstTileDensity:P0}";
        run.Notes["weightCopies"] = copies.ToString();
        if (plan.Path == SpMMPath.Sparse && SpMM.SparseKernelResources(device, n) is { } resources)
            run.Notes["regs/local"] = $"{resources.Registers}/{resources.LocalBytes}";
        return run;
    }

    /// <summary>fp16 weights with each element kept with probability 1 − s (uniform sparsity, as Flash-LLM's benchmark), random signed values, in bank-spread word order.</summary>
    private static TiledCslArrays Generate(int m, int k, double sparsity)
    {
        var w = new System.Half[(long)m * k];
        Parallel.For(0, m, row =>
        {
            var r = new Random(row * 31 + 17);
            var span = w.AsSpan((int)((long)row * k), k);
            for (int c = 0; c < k; c++)
                if (r.NextDouble() >= sparsity) span[c] = (System.Half)((0.05f + 0.95f * r.NextSingle()) * (r.Next(2) == 0 ? -1 : 1));
        });
        return TiledCslEncoder.Encode<System.Half>(w, m, k, wordOrder: TiledCslWordOrder.BankSpread);
    }
}
