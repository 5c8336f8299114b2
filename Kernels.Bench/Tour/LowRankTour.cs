using Kernels.LowRank;
using Kernels.Runtime;
using Kernels.Tensors;

namespace Kernels.Bench.Tour;

/// <summary>
/// LowRank family rows: GaLore projections and the fused apply, warm subspace iteration and randomized SVD (f32,
/// SIMT GEMM), and the streaming low-rank product. Full shapes: a LLaMA-7B MLP gradient 11008×4096 at r = 128, and
/// StreamMatmul at M = 8192, K = N = 4096, r = 64. Bytes and FLOPs follow docs/lowrank.md §6.
/// </summary>
public sealed class LowRankTour : ITourSuite
{
    /// <inheritdoc />
    public string Family => "LowRank";

    /// <inheritdoc />
    public IEnumerable<TourCase> Cases(TourContext context)
    {
        bool full = context.Full;
        // CPU shapes are tiny: the CPU accelerator pays a group barrier per 8-wide K step, and the tour has a time budget.
        int m = full ? 11008 : 48, n = full ? 4096 : 16, r = full ? 128 : 4;
        string shape = $"m={m} n={n} r={r}";
        // GaLore's std rule on an m ≥ n gradient: Right projector Q (r×n), R = G·Qᵀ (m×r).
        yield return new TourCase
        {
            Op = "galore project G·Qᵀ", Shape = shape, DType = "f32",
            Flops = 2.0 * m * n * r, Bytes = 4.0 * ((double)m * n + (double)r * n + (double)m * r),
            Setup = ctx => ProjectRun(ctx.Device, m, n, r),
        };
        yield return new TourCase
        {
            Op = "galore back-project N·Q", Shape = shape, DType = "f32",
            Flops = 2.0 * m * n * r, Bytes = 4.0 * ((double)m * r + (double)r * n + (double)m * n),
            Setup = ctx => BackRun(ctx.Device, m, n, r, fused: false),
        };
        yield return new TourCase
        {
            Op = "galore fused apply W-=lr·s·N·Q", Shape = shape, DType = "f32",
            Flops = 2.0 * m * n * r + 2.0 * m * n, Bytes = 4.0 * ((double)m * r + (double)r * n + 2.0 * m * n),
            Setup = ctx => BackRun(ctx.Device, m, n, r, fused: true),
        };
        yield return new TourCase
        {
            Op = "subspace warm iteration (1 it)", Shape = shape, DType = "f32",
            Flops = 4.0 * m * n * r + 6.0 * Math.Max(m, n) * (double)r * r, Bytes = 2.0 * 4.0 * m * n,
            Setup = ctx => SubspaceRun(ctx.Device, m, n, r, randomized: false),
        };
        int l = r + 8, q = 2;
        yield return new TourCase
        {
            Op = "randomized svd (q=2, l=r+8)", Shape = shape, DType = "f32",
            Flops = 2.0 * m * n * l * (2 * q + 2) + 2.0 * ((double)m + n) * l * l, Bytes = (2 * q + 2) * 4.0 * m * n,
            Setup = ctx => SubspaceRun(ctx.Device, m, n, r, randomized: true),
        };

        // y = ((x·V)⊙s)·Uᵀ + bias, f16: one-pass at r = 64, two-stage (tile engine) above 128.
        int sm = full ? 8192 : 32, sk = full ? 4096 : 32, sn = full ? 4096 : 32;
        // The two-stage row runs on the GPU only (on the CPU accelerator the engine's mma emulation takes seconds;
        // StreamMatmulTests covers it there).
        foreach (int rank in full ? new[] { 64, 256 } : new[] { 16 })
        {
            bool twoStage = LowRankProduct.PathFor(rank) == StreamMatmulPath.TwoStage;
            double bytes = 2.0 * ((double)sm * sk + (double)sm * sn + (double)rank * (sk + sn) + sn) + 4.0 * rank
                + (twoStage ? 2.0 * 2.0 * sm * rank : 0);
            yield return new TourCase
            {
                Op = twoStage ? "stream matmul (two-stage)" : "stream matmul (one-pass)",
                Shape = $"M={sm} K={sk} N={sn} r={rank}", DType = "f16",
                Flops = 2.0 * sm * sk * rank + 2.0 * sm * sn * rank, Bytes = bytes,
                Setup = ctx => StreamRun(ctx.Device, sm, sk, sn, rank),
            };
        }
        yield return FfnCase(full);
    }

    private static TourCase FfnCase(bool full)
    {
        int m = full ? 8192 : 16, r1 = full ? 128 : 8, d = full ? 11008 : 40, r2 = full ? 128 : 8, h = full ? 4096 : 24;
        return new TourCase
        {
            Op = "stream ffn gelu (hidden on chip)", Shape = $"M={m} R1={r1} D={d} R2={r2} H={h}", DType = "f16",
            Flops = 2.0 * m * ((double)r1 * d + (double)d * r2 + (double)r2 * h),
            Bytes = 2.0 * m * (r1 + h) + 2.0 * ((double)r1 * d + (double)d * r2 + (double)r2 * h + d + h),
            Setup = ctx => FfnRun(ctx.Device, m, r1, d, r2, h),
        };
    }

    private static TourRun FfnRun(ComputeDevice device, int m, int r1, int d, int r2, int h)
    {
        static float[] Round(float[] a) => ElementTypes.FromFloat<ILGPU.Half>(a).Select(v => (float)v).ToArray();
        var x = Round(Gaussian(21, (long)m * r1));
        var v1 = Round(Gaussian(22, (long)r1 * d, 1f / MathF.Sqrt(r1)));
        var b1 = Round(Gaussian(23, d, 0.2f));
        var u2 = Round(Gaussian(24, (long)d * r2, 1f / MathF.Sqrt(d)));
        var v2 = Round(Gaussian(25, (long)r2 * h, 1f / MathF.Sqrt(r2)));
        var b2 = Round(Gaussian(26, h, 0.1f));
        var dx = device.Upload(ElementTypes.FromFloat<ILGPU.Half>(x), m, r1);
        var dv1 = device.Upload(ElementTypes.FromFloat<ILGPU.Half>(v1), r1, d);
        var db1 = device.Upload(ElementTypes.FromFloat<ILGPU.Half>(b1), d);
        var du2 = device.Upload(ElementTypes.FromFloat<ILGPU.Half>(u2), d, r2);
        var dv2 = device.Upload(ElementTypes.FromFloat<ILGPU.Half>(v2), r2, h);
        var db2 = device.Upload(ElementTypes.FromFloat<ILGPU.Half>(b2), h);
        var dy = device.Allocate<ILGPU.Half>(m, h);
        var run = new TourRun
        {
            Launch = () => LowRankProduct.StreamFfn<ILGPU.Half>(dx, dv1, db1, du2, dv2, db2, FfnActivation.Gelu, dy),
            Verify = () =>
            {
                var got = dy.ToArray();
                var rows = SampleRows(m);
                var a = new float[rows.Length * h];
                var e = new double[rows.Length * h];
                foreach (var (i, at) in rows.Select((i, at) => (i, at)))
                {
                    var yi = LowRankReference.StreamFfn(x.AsSpan(i * r1, r1), v1, b1, u2, v2, b2, FfnActivation.Gelu, 1, r1, d, r2, h);
                    for (int j = 0; j < h; j++)
                    {
                        e[at * h + j] = yi[j];
                        a[at * h + j] = (float)got[(long)i * h + j];
                    }
                }
                return RelativeError(a, e);
            },
            Bound = 2e-3,
            Release = () => { dx.Dispose(); dv1.Dispose(); db1.Dispose(); du2.Dispose(); dv2.Dispose(); db2.Dispose(); dy.Dispose(); },
        };
        run.Notes["workspace"] = "none (M×D hidden and M×R2 never stored)";
        return run;
    }

    private static TourRun StreamRun(ComputeDevice device, int m, int k, int n, int r)
    {
        static float[] Round(float[] a) => ElementTypes.FromFloat<ILGPU.Half>(a).Select(h => (float)h).ToArray();
        var x = Round(Gaussian(11, (long)m * k));
        var v = Round(Gaussian(12, (long)k * r, 1f / MathF.Sqrt(k)));
        var s = Gaussian(13, r).Select(z => 1f + 0.25f * MathF.Abs(z)).ToArray();
        var u = Round(Gaussian(14, (long)n * r, 1f / MathF.Sqrt(r)));
        var b = Round(Gaussian(15, n, 0.1f));
        var dx = device.Upload(ElementTypes.FromFloat<ILGPU.Half>(x), m, k);
        var dv = device.Upload(ElementTypes.FromFloat<ILGPU.Half>(v), k, r);
        var ds = device.Upload<float>(s, r);
        var du = device.Upload(ElementTypes.FromFloat<ILGPU.Half>(u), n, r);
        var db = device.Upload(ElementTypes.FromFloat<ILGPU.Half>(b), n);
        var dy = device.Allocate<ILGPU.Half>(m, n);
        var run = new TourRun
        {
            Launch = () => LowRankProduct.StreamMatmul<ILGPU.Half>(dx, dv, ds, du, db, dy),
            Verify = () =>
            {
                var got = dy.ToArray();
                var rows = SampleRows(m);
                var a = new float[rows.Length * n];
                var e = new double[rows.Length * n];
                foreach (var (i, at) in rows.Select((i, at) => (i, at)))
                {
                    var yi = LowRankReference.StreamMatmul(x.AsSpan((int)((long)i * k), k), v, s, u, b, 1, k, n, r);
                    for (int j = 0; j < n; j++)
                    {
                        e[at * n + j] = yi[j];
                        a[at * n + j] = (float)got[(long)i * n + j];
                    }
                }
                return RelativeError(a, e);
            },
            Bound = 2e-3,
            Release = () => { dx.Dispose(); dv.Dispose(); ds.Dispose(); du.Dispose(); db.Dispose(); dy.Dispose(); },
        };
        run.Notes["path"] = LowRankProduct.PathFor(r).ToString();
        run.Notes["products"] = "mma.sync, T rounded to f16";
        run.Notes["workspace"] = LowRankProduct.WorkspaceElements(m, r) == 0 ? "none" : $"M×r = {LowRankProduct.WorkspaceElements(m, r)} f16";
        return run;
    }

    private static float[] Gaussian(int seed, long count, float std = 1f)
    {
        var rng = new Random(seed);
        var x = new float[count];
        for (long i = 0; i < count; i++)
        {
            double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
            x[i] = std * (float)(Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
        }
        return x;
    }

    private static double RelativeError(float[] actual, double[] expected)
    {
        double num = 0, den = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            if (!float.IsFinite(actual[i])) return double.PositiveInfinity;
            double d = actual[i] - expected[i];
            num += d * d;
            den += expected[i] * expected[i];
        }
        return Math.Sqrt(num / Math.Max(den, double.MinValue));
    }

    /// <summary>Rows of a sample checked against the f64 reference: full-size references would take minutes on the host.</summary>
    private static int[] SampleRows(int m) => m <= 256 ? Enumerable.Range(0, m).ToArray() : Enumerable.Range(0, 64).Select(i => (int)((long)i * (m - 1) / 63)).ToArray();

    private static TourRun ProjectRun(ComputeDevice device, int m, int n, int r)
    {
        var g = Gaussian(1, (long)m * n);
        var q = Gaussian(2, (long)r * n);
        var dg = device.Upload<float>(g, m, n);
        var dq = device.Upload<float>(q, r, n);
        var dr = device.Allocate<float>(m, r);
        return new TourRun
        {
            Launch = () => GaLore.Project(dg, dq, ProjectionSide.Right, dr),
            Verify = () =>
            {
                var got = dr.ToArray();
                var rows = SampleRows(m);
                var a = new float[rows.Length * r];
                var e = new double[rows.Length * r];
                foreach (var (i, at) in rows.Select((i, at) => (i, at)))
                    for (int k = 0; k < r; k++)
                    {
                        double s = 0;
                        for (int j = 0; j < n; j++) s += (double)g[(long)i * n + j] * q[(long)k * n + j];
                        e[at * r + k] = s;
                        a[at * r + k] = got[i * r + k];
                    }
                return RelativeError(a, e);
            },
            Bound = 1e-5,
            Notes = { ["splits"] = KernelsInfo.Splits(device, m, r, n).ToString() },
            Release = () => { dg.Dispose(); dq.Dispose(); dr.Dispose(); },
        };
    }

    private static TourRun BackRun(ComputeDevice device, int m, int n, int r, bool fused)
    {
        var low = Gaussian(3, (long)m * r);
        var q = Gaussian(4, (long)r * n);
        var w = Gaussian(5, (long)m * n);
        var dn = device.Upload<float>(low, m, r);
        var dq = device.Upload<float>(q, r, n);
        var dw = device.Upload<float>(w, m, n);
        const float lr = 1e-3f, scale = 0.25f;
        return new TourRun
        {
            Launch = () =>
            {
                if (fused)
                {
                    dw.CopyFrom(w); // the fused apply updates W in place; restore it so every launch does the same work
                    GaLore.ApplyUpdate(dn, dq, ProjectionSide.Right, lr, scale, dw);
                }
                else GaLore.BackProject(dn, dq, ProjectionSide.Right, scale, dw);
            },
            Verify = () =>
            {
                var got = dw.ToArray();
                var rows = SampleRows(m);
                var a = new float[rows.Length * n];
                var e = new double[rows.Length * n];
                foreach (var (i, at) in rows.Select((i, at) => (i, at)))
                    for (int j = 0; j < n; j++)
                    {
                        double s = 0;
                        for (int k = 0; k < r; k++) s += (double)low[(long)i * r + k] * q[(long)k * n + j];
                        e[at * n + j] = fused ? w[(long)i * n + j] - (double)lr * scale * s : scale * s;
                        a[at * n + j] = got[(long)i * n + j];
                    }
                return RelativeError(a, e);
            },
            Bound = 1e-5,
            Notes = { ["path"] = fused ? "GEMM epilogue folds into W (no m×n temporary)" : "GEMM, K=r unsplit" },
            Release = () => { dn.Dispose(); dq.Dispose(); dw.Dispose(); },
        };
    }

    /// <summary>
    /// A gradient with a planted spectrum: G = U·diag(σ)·Vᵀ (U, V orthonormal, rank k), formed on the device, so the
    /// exact top-r energy √(Σσ²) is known without a full SVD. The row verifies ‖QQᵀ − I‖_F ≤ 1e-5 and (as a hard
    /// condition) captured energy ≥ 99 % of the optimum; the warm iteration starts from a perturbed exact basis.
    /// </summary>
    private static TourRun SubspaceRun(ComputeDevice device, int m, int n, int r, bool randomized)
    {
        int k = Math.Min(2 * r + 16, Math.Min(m, n));
        var sigma = new double[k];
        for (int i = 0; i < k; i++) sigma[i] = 10.0 * Math.Pow(0.97, i) * (i >= r ? 0.3 : 1.0);
        var u = Orthonormal(7, m, k);
        var v = Orthonormal(8, n, k);
        var us = new float[(long)m * k];
        for (long i = 0; i < m; i++)
            for (int p = 0; p < k; p++) us[i * k + p] = (float)(u[i * k + p] * sigma[p]);
        var vt = new float[(long)k * n];
        for (long j = 0; j < n; j++)
            for (int p = 0; p < k; p++) vt[p * n + j] = (float)v[j * k + p];
        var dg = device.Allocate<float>(m, n);
        using (var dus = device.Upload<float>(us, m, k))
        using (var dvt = device.Upload<float>(vt, k, n))
        {
            // G = (U·Σ)·Vᵀ with the library's own f32 GEMM (as GaLore's back-projection: "projector" Vᵀ, r = k).
            GaLore.BackProject(dus, dvt, ProjectionSide.Right, 1f, dg);
            device.Synchronize();
        }
        double optimum = Math.Sqrt(sigma.Take(r).Sum(s => s * s));
        // Right side (m ≥ n): Q is r×n with orthonormal rows.
        var q0 = new float[(long)r * n];
        var jitter = Gaussian(9, (long)r * n, 0.02f);
        for (int p = 0; p < r; p++)
            for (long j = 0; j < n; j++) q0[p * n + j] = (float)v[j * k + p] + jitter[p * n + j] / MathF.Sqrt(n);
        var basis = device.Upload<float>(q0, r, n);
        var projected = device.Allocate<float>(m, r);
        var values = new float[r];
        var run = new TourRun
        {
            Launch = () =>
            {
                if (randomized) Subspace.RandomizedSvd(dg, ProjectionSide.Right, 2, 8, 42, basis, values);
                else
                {
                    basis.CopyFrom(q0); // every launch refines the same stale basis
                    Subspace.WarmIterate(dg, ProjectionSide.Right, 1, basis);
                }
            },
            Verify = () =>
            {
                var b = basis.ToArray();
                double orth = 0;
                for (int p = 0; p < r; p++)
                    for (int s = 0; s < r; s++)
                    {
                        double dot = 0;
                        for (long j = 0; j < n; j++) dot += (double)b[p * n + j] * b[s * n + j];
                        double d = dot - (p == s ? 1 : 0);
                        orth += d * d;
                    }
                GaLore.Project(dg, basis, ProjectionSide.Right, projected);
                double energy = Math.Sqrt(projected.ToArray().Sum(x => (double)x * x));
                double ratio = energy / optimum;
                double sigmaErr = 0;
                if (randomized)
                    for (int i = 0; i < r; i++) sigmaErr = Math.Max(sigmaErr, Math.Abs(values[i] - sigma[i]) / sigma[0]);
                return ratio >= 0.99 && ratio <= 1 + 1e-5 && sigmaErr <= 1e-3 ? Math.Sqrt(orth) : double.PositiveInfinity;
            },
            Bound = 1e-5,
            Release = () => { dg.Dispose(); basis.Dispose(); projected.Dispose(); },
        };
        run.Notes["ortho"] = "CholeskyQR2, host f64 l×l";
        run.Notes["side"] = "Right (Q r×n)";
        return run;
    }

    /// <summary>Random orthonormal columns (row-major m×k): Gaussian columns through the reference's Gram–Schmidt.</summary>
    private static double[] Orthonormal(int seed, int m, int k)
    {
        var g = Gaussian(seed, (long)m * k);
        var q = new double[(long)m * k];
        for (long i = 0; i < q.Length; i++) q[i] = g[i];
        LowRankReference.Orthonormalize(q, m, k);
        return q;
    }

    private static class KernelsInfo
    {
        public static int Splits(ComputeDevice device, int m, int n, int k) => SimtGemm.SplitsFor(device, m, n, k);
    }
}
