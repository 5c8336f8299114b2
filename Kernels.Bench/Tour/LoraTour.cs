using Kernels.Lora;
using Kernels.Quantization;
using Kernels.Tensors;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Bench.Tour;

/// <summary>
/// Fused LoRA rows: forward, backward, multi-adapter (SGMV) forward and BGMV decode. GPU (full): LoRAFusion's kernel
/// point M = 8192 tokens, K = N = 4096, r = 16, f16, p = 0.1; verified on 8 spot rows (and spot columns of dA, dB)
/// against <see cref="LoraReference"/>, with the fused-vs-unfused byte model in the notes (docs/lowrank.md §6).
/// CPU accelerator: tiny shapes, verified everywhere.
/// </summary>
public sealed class LoraTour : ITourSuite
{
    /// <inheritdoc />
    public string Family => "LoRA";

    private sealed record Shape(int M, int K, int N, int R)
    {
        public string Name => $"M={M} K={K} N={N}";
    }

    /// <inheritdoc />
    public IEnumerable<TourCase> Cases(TourContext context)
    {
        var shape = context.Full ? new Shape(8192, 4096, 4096, 16) : new Shape(24, 64, 48, 16);
        yield return ForwardCase(shape);
        yield return BackwardCase(shape);
        yield return SegmentedCase(context.Full ? new Shape(8192, 4096, 4096, 64) : new Shape(24, 64, 48, 64));
        yield return QuantizedCase(shape);
        yield return BgmvCase(context.Full ? new Shape(16, 4096, 4096, 16) : new Shape(4, 64, 48, 16));
    }

    private const int B = 2; // f16 bytes
    private const float P = 0.1f;
    private const double Bound = 2e-3;

    private static Operand<DeviceHalf> Operand(Random random, long n, float std) => TourData.Rounded<DeviceHalf>(random, n, std);

    private static int[] SpotRows(int m) => m <= 32 ? Enumerable.Range(0, m).ToArray() : [0, 1, 7, 129, m / 2, m / 2 + 1, m - 2, m - 1];

    /// <summary>The relative error of the spot rows of <paramref name="y"/> (M×N) against <paramref name="reference"/>(rows, expected).</summary>
    private static double SpotError(DeviceTensor<DeviceHalf> y, int m, int n, Action<int[], double[]> reference)
    {
        var rows = SpotRows(m);
        var expected = new double[rows.Length * n];
        reference(rows, expected);
        return TourData.RelativeError(TourData.Rows<DeviceHalf>(y.ToArray(), n, rows), expected);
    }

    private static string Mb(double bytes) => bytes >= 1e6 ? $"{bytes / 1e6:F1}MB" : $"{bytes / 1e3:F1}KB";

    private static TourCase ForwardCase(Shape sh)
    {
        var (m, k, n, r) = sh;
        // Compulsory: X, W, A, B, Y once, S written once (saved for the backward).
        double compulsory = B * ((double)m * k + (double)n * k + (double)r * k + (double)n * r + (double)m * n) + 4.0 * m * r;
        // This implementation: the shrink and the GEMM both read X; S is written once and read once.
        double fused = compulsory + B * (double)m * k + 4.0 * m * r;
        // Eager PyTorch (docs/lowrank.md §6): b(4MK + 6MN + 2Mr) + 1-byte mask·MK + weights.
        double unfused = B * (4.0 * m * k + 6.0 * m * n + 2.0 * m * r) + (double)m * k + B * ((double)n * k + (double)r * k + (double)n * r);
        return TourCase.Of($"lora fused forward r={r} p={P}", sh.Name, "f16",
            flops: 2.0 * m * n * k + 2.0 * m * k * r + 2.0 * m * n * r, bytes: compulsory, setup: d =>
            {
                var random = new Random(42);
                var (x, w, a, b, bias) = (Operand(random, (long)m * k, 1f), Operand(random, (long)n * k, 0.02f),
                    Operand(random, (long)r * k, 0.02f), Operand(random, (long)n * r, 0.02f), Operand(random, n, 0.1f));
                float alpha = 32f / r;
                var dropout = new LoraDropout(P, 1234, 0);
                var (xd, wd, ad, bd, biasd) = (d.Upload<DeviceHalf>(x.Typed, m, k), d.Upload<DeviceHalf>(w.Typed, n, k),
                    d.Upload<DeviceHalf>(a.Typed, r, k), d.Upload<DeviceHalf>(b.Typed, n, r), d.Upload<DeviceHalf>(bias.Typed, n));
                var (s, y) = (d.Allocate<float>(m, r), d.Allocate<DeviceHalf>(m, n));
                return d.Run(() => Kernels.Lora.Lora.Forward<DeviceHalf>(xd, wd, ad, bd, biasd.ReadOnlySpan, alpha, dropout, s, y),
                    () => SpotError(y, m, n, (rows, e) => LoraReference.ForwardRows(x.Host, w.Host, a.Host, b.Host, bias.Host, k, n, r, alpha, dropout, rows, e)),
                    Bound, ("bytes fused", Mb(fused)), ("bytes unfused eager", Mb(unfused)),
                    ("saved", $"{100 * (1 - fused / unfused):F0}%"), ("verified rows", SpotRows(m).Length.ToString()));
            });
    }

    private static TourCase BackwardCase(Shape sh)
    {
        var (m, k, n, r) = sh;
        double compulsory = B * ((double)m * n + (double)m * k + (double)n * k + (double)r * k + (double)n * r) + 4.0 * m * r // dY X W A B S
                            + 4.0 * ((double)m * r + (double)r * k + (double)n * r) + B * (double)m * k;                    // dS dA dB dX
        // This implementation: dY read by the dS/dB sweep (once; both dS and dB, LoraBackwardPlan) and the dX kernel, or
        // by three kernels where the byte model keeps dS and dB as two passes; dS written once and read by dA and dX.
        // Eager autograd estimate: dY read by dX-base, α-scale, dB; X̂ materialized in the forward and read back; the
        // mask read; dX̂ = dS·A and the dropout backward each write and read M×K; the final add reads two M×K.
        double unfused = B * (5.0 * m * n + 8.0 * m * k + 4.0 * m * r) + (double)m * k + B * ((double)n * k + (double)r * k + (double)n * r)
                         + 4.0 * ((double)r * k + (double)n * r);
        return TourCase.Of($"lora fused backward r={r} p={P}", sh.Name, "f16",
            flops: 4.0 * m * n * r + 2.0 * m * r * k + 2.0 * m * n * k + 2.0 * m * r * k, bytes: compulsory, setup: d =>
            {
                var random = new Random(7);
                var (x, w, a, b, dy) = (Operand(random, (long)m * k, 1f), Operand(random, (long)n * k, 0.02f),
                    Operand(random, (long)r * k, 0.02f), Operand(random, (long)n * r, 0.02f), Operand(random, (long)m * n, 1f));
                float alpha = 32f / r;
                var dropout = new LoraDropout(P, 99, 3);
                var (xd, wd, ad, bd, dyd) = (d.Upload<DeviceHalf>(x.Typed, m, k), d.Upload<DeviceHalf>(w.Typed, n, k),
                    d.Upload<DeviceHalf>(a.Typed, r, k), d.Upload<DeviceHalf>(b.Typed, n, r), d.Upload<DeviceHalf>(dy.Typed, m, n));
                var (s, ds, da, db, dx) = (d.Allocate<float>(m, r), d.Allocate<float>(m, r), d.Allocate<float>(r, k),
                    d.Allocate<float>(n, r), d.Allocate<DeviceHalf>(m, k));
                Kernels.Lora.Lora.Shrink<DeviceHalf>(xd, ad, dropout, s);
                var plan = Kernels.Lora.Lora.BackwardPlan<DeviceHalf>(d.Device, m, n, r);
                double fused = compulsory + (plan.Fused ? 1.0 : 2.0) * B * m * n + 8.0 * m * r;
                return d.Run(() => Kernels.Lora.Lora.Backward<DeviceHalf>(dyd, xd, wd, ad, bd, s, alpha, dropout, ds, da, db, dx),
                    () => VerifyBackward(x.Host, w.Host, a.Host, b.Host, dy.Host, s.ToArray(), ds.ToArray(), da.ToArray(),
                        db.ToArray(), dx.ToArray(), sh, alpha, dropout),
                    Bound, ("bytes fused", Mb(fused)), ("bytes unfused eager (est.)", Mb(unfused)),
                    ("dS+dB", plan.Fused
                        ? $"one sweep over dY: {Mb(plan.FusedBytes)} (two passes: {Mb(plan.TwoPassBytes)})"
                        : $"two passes: {Mb(plan.TwoPassBytes)} (a sweep's planes: {Mb(plan.FusedBytes)})"),
                    ("mask bytes", "0 (regenerated)"));
            });
    }

    /// <summary>
    /// Spot checks: dS and dX on spot rows from the inputs alone; dB on spot rows (all M summed) against α·dYᵀ·S with
    /// the forward's S, and dA on spot columns against dSᵀ·drop(X) with the device dS (itself checked). Returns the
    /// largest relative error.
    /// </summary>
    private static double VerifyBackward(float[] x, float[] w, float[] a, float[] b, float[] dy, float[] s, float[] ds, float[] da,
        float[] db, DeviceHalf[] dx, Shape sh, float alpha, LoraDropout dropout)
    {
        var (m, k, n, r) = sh;
        var rows = SpotRows(m);
        var eds = new double[rows.Length * r];
        var gds = new float[rows.Length * r];
        var edx = new double[rows.Length * k];
        for (int q = 0; q < rows.Length; q++)
        {
            int i = rows[q];
            var dsRow = new double[r];
            for (int j = 0; j < r; j++)
            {
                double sum = 0;
                for (int o = 0; o < n; o++) sum += (double)dy[i * n + o] * b[o * r + j];
                dsRow[j] = alpha * sum;
                eds[q * r + j] = dsRow[j];
                gds[q * r + j] = ds[i * r + j];
            }
            for (int c = 0; c < k; c++)
            {
                double sum = 0;
                for (int o = 0; o < n; o++) sum += (double)dy[i * n + o] * w[o * k + c];
                double lora = 0;
                for (int j = 0; j < r; j++) lora += dsRow[j] * a[j * k + c];
                long e = (long)i * k + c;
                edx[q * k + c] = sum + (dropout.Keeps(e) ? lora / (1.0 - dropout.P) : 0.0);
            }
        }
        int[] cols = k <= 64 ? Enumerable.Range(0, k).ToArray() : [0, 1, 63, 64, k / 2, k - 1];
        var eda = new double[r * cols.Length];
        var gda = new float[r * cols.Length];
        for (int j = 0; j < r; j++)
            for (int q = 0; q < cols.Length; q++)
            {
                double sum = 0;
                for (int i = 0; i < m; i++) sum += ds[i * r + j] * LoraReference.Dropped(x, k, i, cols[q], dropout);
                eda[j * cols.Length + q] = sum;
                gda[j * cols.Length + q] = da[j * k + cols[q]];
            }
        int[] outs = n <= 64 ? Enumerable.Range(0, n).ToArray() : [0, 1, 63, 64, n / 2, n - 1];
        var edb = new double[outs.Length * r];
        var gdb = new float[outs.Length * r];
        for (int q = 0; q < outs.Length; q++)
            for (int j = 0; j < r; j++)
            {
                double sum = 0;
                for (int i = 0; i < m; i++) sum += (double)dy[i * n + outs[q]] * s[i * r + j];
                edb[q * r + j] = alpha * sum;
                gdb[q * r + j] = db[outs[q] * r + j];
            }
        var gdx = TourData.Rows<DeviceHalf>(dx, k, rows);
        return new[] { TourData.RelativeError(gds, eds), TourData.RelativeError(gda, eda), TourData.RelativeError(gdb, edb),
            TourData.RelativeError(gdx, edx) }.Max();
    }

    private static (List<LoraAdapter<DeviceHalf>> Typed, List<LoraAdapter<float>> Host) Adapters(Random random, int k, int n, int[] ranks)
    {
        var typed = new List<LoraAdapter<DeviceHalf>>();
        var host = new List<LoraAdapter<float>>();
        foreach (int r in ranks)
        {
            var a = Operand(random, (long)r * k, 0.02f);
            var b = Operand(random, (long)n * r, 0.02f);
            typed.Add(new LoraAdapter<DeviceHalf>(r, 32f / r, a.Typed, b.Typed));
            host.Add(new LoraAdapter<float>(r, 32f / r, a.Host, b.Host));
        }
        return (typed, host);
    }

    private static TourCase SegmentedCase(Shape sh)
    {
        var (m, k, n, maxRank) = sh;
        int[] ranks = [8, 16, 32, maxRank];
        // Skewed segments (Punica's "skewed" popularity): 1 row, then 1/2, 1/4 and the rest; one segment without adapter.
        int[] starts = [0, 1, 1 + m / 2, 1 + m / 2 + m / 4, m - m / 8, m];
        int[] ids = [3, 0, 1, -1, 2];
        double adapterBytes = ranks.Sum(r => B * (double)r * (k + n));
        double compulsory = B * ((double)m * k + (double)m * n + (double)n * k) + adapterBytes + 4.0 * m * maxRank;
        return TourCase.Of("lora SGMV forward 4 adapters", $"{sh.Name} r=8..{maxRank}", "f16",
            flops: 2.0 * m * n * k + 2.0 * m * maxRank * (k + n), bytes: compulsory, setup: d =>
            {
                var random = new Random(5);
                var (x, w) = (Operand(random, (long)m * k, 1f), Operand(random, (long)n * k, 0.02f));
                var (typed, host) = Adapters(random, k, n, ranks);
                var set = d.Own(LoraAdapterSet<DeviceHalf>.Create(d.Device, k, n, typed));
                var batch = d.Own(LoraBatch.FromSegments(d.Device, starts, ids));
                var dropout = new LoraDropout(P, 77, 1);
                var (xd, wd) = (d.Upload<DeviceHalf>(x.Typed, m, k), d.Upload<DeviceHalf>(w.Typed, n, k));
                var (s, y) = (d.Allocate<float>(m, set.MaxRank), d.Allocate<DeviceHalf>(m, n));
                return d.Run(() => Kernels.Lora.Lora.SegmentedForward<DeviceHalf>(xd, wd, null, set, batch, dropout, s, y),
                    () => SpotError(y, m, n, (rows, e) => LoraReference.SegmentedForwardRows(x.Host, w.Host, [], host, batch.RowAdapters, k, n, dropout, rows, e)),
                    Bound, ("segments", string.Join("/", starts.Zip(starts.Skip(1), (p, q) => q - p))),
                    ("W reads", "1 (one GEMM for all segments)"));
            });
    }

    private static TourCase QuantizedCase(Shape sh)
    {
        var (m, k, n, r) = sh;
        const int blockSize = 64;
        // NF4 codes (½ byte) + nested absmax (1 byte per block + 4 bytes per 256 blocks) instead of 2 bytes per weight.
        double weightBytes = (double)n * k / 2 + (double)n * k / blockSize + 4.0 * n * k / blockSize / 256;
        double compulsory = B * ((double)m * k + (double)r * k + (double)n * r + (double)m * n) + weightBytes + 4.0 * m * r;
        return TourCase.Of($"lora QLoRA forward NF4 B={blockSize} r={r} p={P}", sh.Name, "f16",
            flops: 2.0 * m * n * k + 2.0 * m * k * r + 2.0 * m * n * r, bytes: compulsory, setup: d =>
            {
                var random = new Random(13);
                var (x, w, a, b) = (Operand(random, (long)m * k, 1f), Operand(random, (long)n * k, 0.02f),
                    Operand(random, (long)r * k, 0.02f), Operand(random, (long)n * r, 0.02f));
                float alpha = 32f / r;
                var dropout = new LoraDropout(P, 4321, 2);
                var (xd, ad, bd) = (d.Upload<DeviceHalf>(x.Typed, m, k), d.Upload<DeviceHalf>(a.Typed, r, k), d.Upload<DeviceHalf>(b.Typed, n, r));
                BlockwiseQuantized q;
                using (var wd = d.Device.Upload<DeviceHalf>(w.Typed, (nint)((long)n * k)))
                    q = d.Own(BlockwiseQuantized.Quantize<DeviceHalf>(wd, CodeBook.NF4, blockSize, nested: true));
                var (s, y) = (d.Allocate<float>(m, r), d.Allocate<DeviceHalf>(m, n));
                return d.Run(() => Kernels.Lora.Lora.QuantizedForward<DeviceHalf>(xd, q, ad, bd, null, alpha, dropout, s, y), () =>
                {
                    using var wdq = d.Device.Allocate<DeviceHalf>((nint)((long)n * k));
                    q.Dequantize<DeviceHalf>(wdq);
                    var wHost = new float[(long)n * k];
                    ElementTypes.ToFloat<DeviceHalf>(wdq.ToArray(), wHost);
                    return SpotError(y, m, n, (rows, e) => LoraReference.ForwardRows(x.Host, wHost, a.Host, b.Host, [], k, n, r, alpha, dropout, rows, e));
                }, Bound, ("W bits/weight", q.BitsPerElement.ToString("F3")), ("dequantized W in memory", "none (producer)"));
            });
    }

    private static TourCase BgmvCase(Shape sh)
    {
        var (m, k, n, r) = sh;
        int adapters = 8;
        var indices = Enumerable.Range(0, m).Select(i => i % 4 == 3 ? -1 : (i * 3) % adapters).ToArray();
        int active = indices.Where(i => i >= 0).Distinct().Count();
        return TourCase.Of("lora BGMV decode", $"{sh.Name} r={r}", "f16",
            flops: 2.0 * indices.Count(i => i >= 0) * r * (k + n),
            bytes: B * ((double)m * k + 2.0 * m * n) + active * B * (double)r * (k + n), setup: d =>
            {
                var random = new Random(11);
                var (x, y0) = (Operand(random, (long)m * k, 1f), Operand(random, (long)m * n, 1f));
                var (typed, host) = Adapters(random, k, n, Enumerable.Repeat(r, adapters).ToArray());
                var set = d.Own(LoraAdapterSet<DeviceHalf>.Create(d.Device, k, n, typed));
                var batch = d.Own(LoraBatch.FromTokens(d.Device, indices));
                var (xd, y) = (d.Upload<DeviceHalf>(x.Typed, m, k), d.Upload<DeviceHalf>(y0.Typed, m, n));
                return d.Run(() => Kernels.Lora.Lora.Bgmv<DeviceHalf>(xd, set, batch, y), () =>
                {
                    // One launch happened before Verify: y = y0 + delta.
                    var expected = y0.Host.Select(v => (double)v).ToArray();
                    LoraReference.Bgmv(x.Host, host, indices, m, k, n, expected);
                    double err = TourData.RelativeError<DeviceHalf>(y.ToArray(), expected);
                    y.CopyFrom(y0.Typed); // timing launches keep adding; reset to keep values finite
                    return err;
                }, Bound, ("no-adapter rows", indices.Count(i => i < 0).ToString()));
            });
    }
}
