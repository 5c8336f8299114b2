using Kernels.Dense;
using Kernels.Engine;
using Kernels.Runtime;
using Kernels.Tensors;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Bench.Tour;

/// <summary>
/// Dense baselines: f16 GEMM on the tile engine and the batch-1 GEMV, at LLaMA-7B layer shapes on a GPU. Weights are
/// rotated across enough copies to exceed twice the L2 cache, so times are not cache hits.
/// </summary>
public sealed class DenseTour : ITourSuite
{
    /// <inheritdoc />
    public string Family => "Dense";

    /// <inheritdoc />
    public IEnumerable<TourCase> Cases(TourContext context)
    {
        if (context.Full)
        {
            yield return Gemm(4096, 4096, 16);
            yield return Gemm(4096, 4096, 4096);
            yield return Gemm(11008, 4096, 16);
            yield return Gemv(11008, 4096);
            yield return Gemv(4096, 11008);
        }
        else
        {
            yield return Gemm(64, 64, 5);
            yield return Gemv(64, 136);
        }
    }

    private static TourCase Gemm(int m, int k, int n) => TourCase.Of("gemm Y=X·Wᵀ", $"M={m} K={k} N={n}", "f16",
        2.0 * m * n * k, 2.0 * ((double)m * k + (double)n * k + (double)n * m), d => SetupGemm(d, m, k, n));

    private static TourCase Gemv(int m, int k) => TourCase.Of("gemv y=W·x", $"M={m} K={k}", "f16",
        2.0 * m * k, 2.0 * ((double)m * k + k + m), d => SetupGemv(d, m, k));

    private static int Copies(ComputeDevice device, long weightBytes) =>
        device.IsCuda ? (int)Math.Clamp(2 * device.Facts.L2CacheBytes / Math.Max(1, weightBytes) + 1, 1, 16) : 1;

    private static TourRun SetupGemm(TourBuffers d, int m, int k, int n)
    {
        var device = d.Device;
        var random = new Random(1234);
        var wh = Random16(random, (long)m * k, 0.05f);
        var xh = Random16(random, (long)n * k, 1f);
        int copies = Copies(device, 2L * m * k);
        var weights = Enumerable.Range(0, copies).Select(_ => d.Upload<DeviceHalf>(wh, m, k)).ToArray();
        var x = d.Upload<DeviceHalf>(xh, n, k);
        var y = d.Allocate<DeviceHalf>(n, m);
        int next = 0, last = 0;
        var run = d.Run(() =>
        {
            last = next;
            next = (next + 1) % copies;
            Dense.Dense.Gemm<DeviceHalf>(x, weights[last], null, y);
        }, () => VerifySampled(y.ToArray(), xh, wh, m, k, n), 2e-3);
        var shape = Dense.Dense.ShapeFor(n);
        var problem = shape switch
        {
            Dense.Dense.GemmShape.Skinny => GemmProblem.Create<SkinnyTile>(m, n, k),
            Dense.Dense.GemmShape.Wide => GemmProblem.Create<WideTile>(m, n, k),
            _ => GemmProblem.Create<LargeTile>(m, n, k),
        };
        run.Notes["tile"] = shape.ToString();
        run.Notes["splitK"] = Dense.Dense.AutoSplits(device, problem).ToString();
        run.Notes["weightCopies"] = copies.ToString();
        var resources = DenseKernelInfo.GemmResources(device, shape, bf16: false);
        if (resources is not null) run.Notes["regs/local"] = $"{resources.Registers}/{resources.LocalBytes}";
        return run;
    }

    private static TourRun SetupGemv(TourBuffers d, int m, int k)
    {
        var device = d.Device;
        var random = new Random(4321);
        var wh = Random16(random, (long)m * k, 0.05f);
        var xh = Random16(random, k, 1f);
        int copies = Copies(device, 2L * m * k);
        var weights = Enumerable.Range(0, copies).Select(_ => d.Upload<DeviceHalf>(wh, m, k)).ToArray();
        var x = d.Upload<DeviceHalf>(xh, k);
        var y = d.Allocate<DeviceHalf>(m);
        int next = 0;
        var run = d.Run(() =>
        {
            Dense.Dense.Gemv<DeviceHalf>(weights[next], x, y);
            next = (next + 1) % copies;
        }, () => VerifySampled(y.ToArray(), xh, wh, m, k, 1), 2e-3);
        run.Notes["weightCopies"] = copies.ToString();
        var resources = DenseKernelInfo.GemvResources(device, bf16: false);
        if (resources is not null) run.Notes["regs/local"] = $"{resources.Registers}/{resources.LocalBytes}";
        return run;
    }

    private static DeviceHalf[] Random16(Random random, long count, float scale)
    {
        var values = new DeviceHalf[count];
        for (long i = 0; i < count; i++) values[i] = (DeviceHalf)(scale * (float)(random.NextDouble() * 2 - 1));
        return values;
    }

    /// <summary>Relative error over up to 8 token rows (all of them when N ≤ 8), against an f64 reference.</summary>
    private static double VerifySampled(DeviceHalf[] y, DeviceHalf[] x, DeviceHalf[] w, int m, int k, int n)
    {
        var tokens = n <= 8 ? Enumerable.Range(0, n).ToArray() : Enumerable.Range(0, 8).Select(i => (int)((long)i * (n - 1) / 7)).ToArray();
        var wf = new float[w.Length];
        for (long i = 0; i < w.Length; i++) wf[i] = (float)w[i];
        double num = 0, den = 0;
        Parallel.ForEach(tokens, () => (0.0, 0.0), (t, _, acc) =>
        {
            var xf = new double[k];
            for (int i = 0; i < k; i++) xf[i] = (float)x[(long)t * k + i];
            for (int row = 0; row < m; row++)
            {
                double s = 0;
                long o = (long)row * k;
                for (int i = 0; i < k; i++) s += wf[o + i] * xf[i];
                float got = (float)y[(long)t * m + row];
                if (!float.IsFinite(got)) return (double.PositiveInfinity, 1.0);
                acc.Item1 += (got - s) * (got - s);
                acc.Item2 += s * s;
            }
            return acc;
        }, acc => { lock (tokens) { num += acc.Item1; den += acc.Item2; } });
        return den == 0 ? Math.Sqrt(num) : Math.Sqrt(num / den);
    }
}
