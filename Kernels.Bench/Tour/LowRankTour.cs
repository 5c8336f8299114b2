using Kernels.LowRank;
using Kernels.Tensors;
using DeviceHalf = ILGPU.Half;

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

    private const double F32Bound = 1e-5, F16Bound = 2e-3;

    /// <inheritdoc />
    public IEnumerable<TourCase> Cases(TourContext context)
    {
        bool full = context.Full;
        // CPU shapes are tiny: the CPU accelerator pays a group barrier per 8-wide K step, and the tour has a time budget.
        int m = full ? 11008 : 48, n = full ? 4096 : 16, r = full ? 128 : 4;
        string shape = $"m={m} n={n} r={r}";
        // GaLore's std rule on an m ≥ n gradient: Right projector Q (r×n), R = G·Qᵀ (m×r).
        yield return TourCase.Of("galore project G·Qᵀ", shape, "f32", 2.0 * m * n * r, 4.0 * ((double)m * n + (double)r * n + (double)m * r),
            d => Project(d, m, n, r));
        yield return TourCase.Of("galore back-project N·Q", shape, "f32", 2.0 * m * n * r, 4.0 * ((double)m * r + (double)r * n + (double)m * n),
            d => Back(d, m, n, r, fused: false));
        yield return TourCase.Of("galore fused apply W-=lr·s·N·Q", shape, "f32", 2.0 * m * n * r + 2.0 * m * n,
            4.0 * ((double)m * r + (double)r * n + 2.0 * m * n), d => Back(d, m, n, r, fused: true));
        yield return TourCase.Of("subspace warm iteration (1 it)", shape, "f32", 4.0 * m * n * r + 6.0 * Math.Max(m, n) * (double)r * r,
            2.0 * 4.0 * m * n, d => Subspace(d, m, n, r, randomized: false));
        int l = r + 8, q = 2;
        yield return TourCase.Of("randomized svd (q=2, l=r+8)", shape, "f32", 2.0 * m * n * l * (2 * q + 2) + 2.0 * ((double)m + n) * l * l,
            (2 * q + 2) * 4.0 * m * n, d => Subspace(d, m, n, r, randomized: true));

        // y = ((x·V)⊙s)·Uᵀ + bias, f16: one-pass at r = 64, two-stage (tile engine) above 128.
        int sm = full ? 8192 : 32, sk = full ? 4096 : 32, sn = full ? 4096 : 32;
        // The two-stage row runs on the GPU only (on the CPU accelerator the engine's mma emulation takes seconds;
        // StreamMatmulTests covers it there).
        foreach (int rank in full ? new[] { 64, 256 } : new[] { 16 })
        {
            bool twoStage = LowRankProduct.PathFor(rank) == StreamMatmulPath.TwoStage;
            double bytes = 2.0 * ((double)sm * sk + (double)sm * sn + (double)rank * (sk + sn) + sn) + 4.0 * rank
                + (twoStage ? 2.0 * 2.0 * sm * rank : 0);
            yield return TourCase.Of(twoStage ? "stream matmul (two-stage)" : "stream matmul (one-pass)", $"M={sm} K={sk} N={sn} r={rank}", "f16",
                2.0 * sm * sk * rank + 2.0 * sm * sn * rank, bytes, d => Stream(d, sm, sk, sn, rank));
        }
        int fm = full ? 8192 : 16, r1 = full ? 128 : 8, fd = full ? 11008 : 40, r2 = full ? 128 : 8, h = full ? 4096 : 24;
        yield return TourCase.Of("stream ffn gelu (hidden on chip)", $"M={fm} R1={r1} D={fd} R2={r2} H={h}", "f16",
            2.0 * fm * ((double)r1 * fd + (double)fd * r2 + (double)r2 * h),
            2.0 * fm * (r1 + h) + 2.0 * ((double)r1 * fd + (double)fd * r2 + (double)r2 * h + fd + h), d => Ffn(d, fm, r1, fd, r2, h));
    }

    /// <summary>Normals from seed <paramref name="seed"/>, scaled by <paramref name="std"/> in f32.</summary>
    private static float[] Gaussian(int seed, long count, float std = 1f)
    {
        var x = TourData.Normal(new Random(seed), count);
        for (long i = 0; i < count; i++) x[i] = std * x[i];
        return x;
    }

    /// <summary><see cref="Gaussian"/> values rounded to f16 (the device copy) and widened back (the reference's).</summary>
    private static Operand<DeviceHalf> Half(int seed, long count, float std = 1f) => Operand<DeviceHalf>.From(Gaussian(seed, count, std));

    /// <summary>Rows of a sample checked against the f64 reference: full-size references would take minutes on the host.</summary>
    private static int[] SampleRows(int m) => m <= 256 ? Enumerable.Range(0, m).ToArray() : Enumerable.Range(0, 64).Select(i => (int)((long)i * (m - 1) / 63)).ToArray();

    private static TourRun Ffn(TourBuffers d, int m, int r1, int dim, int r2, int h)
    {
        var (x, v1, b1, u2, v2, b2) = (Half(21, (long)m * r1), Half(22, (long)r1 * dim, 1f / MathF.Sqrt(r1)), Half(23, dim, 0.2f),
            Half(24, (long)dim * r2, 1f / MathF.Sqrt(dim)), Half(25, (long)r2 * h, 1f / MathF.Sqrt(r2)), Half(26, h, 0.1f));
        var (dx, dv1, db1) = (d.Upload<DeviceHalf>(x.Typed, m, r1), d.Upload<DeviceHalf>(v1.Typed, r1, dim), d.Upload<DeviceHalf>(b1.Typed, dim));
        var (du2, dv2, db2) = (d.Upload<DeviceHalf>(u2.Typed, dim, r2), d.Upload<DeviceHalf>(v2.Typed, r2, h), d.Upload<DeviceHalf>(b2.Typed, h));
        var dy = d.Allocate<DeviceHalf>(m, h);
        return d.Run(() => LowRankProduct.StreamFfn<DeviceHalf>(dx, dv1, db1, du2, dv2, db2, FfnActivation.Gelu, dy),
            () => TourData.RowError<DeviceHalf>(dy.ToArray(), h, SampleRows(m), i => LowRankReference.StreamFfn(
                x.Host.AsSpan(i * r1, r1), v1.Host, b1.Host, u2.Host, v2.Host, b2.Host, FfnActivation.Gelu, 1, r1, dim, r2, h)),
            F16Bound, ("workspace", "none (M×D hidden and M×R2 never stored)"));
    }

    private static TourRun Stream(TourBuffers d, int m, int k, int n, int r)
    {
        var (x, v) = (Half(11, (long)m * k), Half(12, (long)k * r, 1f / MathF.Sqrt(k)));
        var s = Gaussian(13, r).Select(z => 1f + 0.25f * MathF.Abs(z)).ToArray();
        var (u, b) = (Half(14, (long)n * r, 1f / MathF.Sqrt(r)), Half(15, n, 0.1f));
        var (dx, dv, ds) = (d.Upload<DeviceHalf>(x.Typed, m, k), d.Upload<DeviceHalf>(v.Typed, k, r), d.Upload<float>(s, r));
        var (du, db, dy) = (d.Upload<DeviceHalf>(u.Typed, n, r), d.Upload<DeviceHalf>(b.Typed, n), d.Allocate<DeviceHalf>(m, n));
        long workspace = LowRankProduct.WorkspaceElements(m, r);
        return d.Run(() => LowRankProduct.StreamMatmul<DeviceHalf>(dx, dv, ds, du, db, dy),
            () => TourData.RowError<DeviceHalf>(dy.ToArray(), n, SampleRows(m), i => LowRankReference.StreamMatmul(
                x.Host.AsSpan((int)((long)i * k), k), v.Host, s, u.Host, b.Host, 1, k, n, r)),
            F16Bound, ("path", LowRankProduct.PathFor(r).ToString()), ("products", "mma.sync, T rounded to f16"),
            ("workspace", workspace == 0 ? "none" : $"M×r = {workspace} f16"));
    }

    private static TourRun Project(TourBuffers d, int m, int n, int r)
    {
        var (g, q) = (Gaussian(1, (long)m * n), Gaussian(2, (long)r * n));
        var (dg, dq, dr) = (d.Upload<float>(g, m, n), d.Upload<float>(q, r, n), d.Allocate<float>(m, r));
        return d.Run(() => GaLore.Project(dg, dq, ProjectionSide.Right, dr),
            () => TourData.RowError<float>(dr.ToArray(), r, SampleRows(m), i => Enumerable.Range(0, r).Select(k =>
            {
                double s = 0;
                for (int j = 0; j < n; j++) s += (double)g[(long)i * n + j] * q[(long)k * n + j];
                return s;
            }).ToArray()),
            F32Bound, ("splits", SimtGemm.SplitsFor(d.Device, m, r, n).ToString()));
    }

    private static TourRun Back(TourBuffers d, int m, int n, int r, bool fused)
    {
        var (low, q, w) = (Gaussian(3, (long)m * r), Gaussian(4, (long)r * n), Gaussian(5, (long)m * n));
        var (dn, dq, dw) = (d.Upload<float>(low, m, r), d.Upload<float>(q, r, n), d.Upload<float>(w, m, n));
        const float lr = 1e-3f, scale = 0.25f;
        return d.Run(() =>
        {
            if (fused)
            {
                dw.CopyFrom(w); // the fused apply updates W in place; restore it so every launch does the same work
                GaLore.ApplyUpdate(dn, dq, ProjectionSide.Right, lr, scale, dw);
            }
            else GaLore.BackProject(dn, dq, ProjectionSide.Right, scale, dw);
        }, () => TourData.RowError<float>(dw.ToArray(), n, SampleRows(m), i => Enumerable.Range(0, n).Select(j =>
        {
            double s = 0;
            for (int k = 0; k < r; k++) s += (double)low[(long)i * r + k] * q[(long)k * n + j];
            return fused ? w[(long)i * n + j] - (double)lr * scale * s : scale * s;
        }).ToArray()),
            F32Bound, ("path", fused ? "GEMM epilogue folds into W (no m×n temporary)" : "GEMM, K=r unsplit"));
    }

    /// <summary>
    /// A gradient with a planted spectrum: G = U·diag(σ)·Vᵀ (U, V orthonormal, rank k), formed on the device, so the
    /// exact top-r energy √(Σσ²) is known without a full SVD. The row verifies ‖QQᵀ − I‖_F ≤ 1e-5 and (as a hard
    /// condition) captured energy ≥ 99 % of the optimum; the warm iteration starts from a perturbed exact basis.
    /// </summary>
    private static TourRun Subspace(TourBuffers d, int m, int n, int r, bool randomized)
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
        var dg = d.Allocate<float>(m, n);
        using (var dus = d.Device.Upload<float>(us, m, k))
        using (var dvt = d.Device.Upload<float>(vt, k, n))
        {
            // G = (U·Σ)·Vᵀ with the library's own f32 GEMM (as GaLore's back-projection: "projector" Vᵀ, r = k).
            GaLore.BackProject(dus, dvt, ProjectionSide.Right, 1f, dg);
            d.Device.Synchronize();
        }
        double optimum = Math.Sqrt(sigma.Take(r).Sum(s => s * s));
        // Right side (m ≥ n): Q is r×n with orthonormal rows.
        var q0 = new float[(long)r * n];
        var jitter = Gaussian(9, (long)r * n, 0.02f);
        for (int p = 0; p < r; p++)
            for (long j = 0; j < n; j++) q0[p * n + j] = (float)v[j * k + p] + jitter[p * n + j] / MathF.Sqrt(n);
        var (basis, projected) = (d.Upload<float>(q0, r, n), d.Allocate<float>(m, r));
        var values = new float[r];
        return d.Run(() =>
        {
            if (randomized) Kernels.LowRank.Subspace.RandomizedSvd(dg, ProjectionSide.Right, 2, 8, 42, basis, values);
            else
            {
                basis.CopyFrom(q0); // every launch refines the same stale basis
                Kernels.LowRank.Subspace.WarmIterate(dg, ProjectionSide.Right, 1, basis);
            }
        }, () =>
        {
            var b = basis.ToArray();
            double orth = 0;
            for (int p = 0; p < r; p++)
                for (int s = 0; s < r; s++)
                {
                    double dot = 0;
                    for (long j = 0; j < n; j++) dot += (double)b[p * n + j] * b[s * n + j];
                    double e = dot - (p == s ? 1 : 0);
                    orth += e * e;
                }
            GaLore.Project(dg, basis, ProjectionSide.Right, projected);
            double energy = Math.Sqrt(projected.ToArray().Sum(x => (double)x * x));
            double ratio = energy / optimum;
            double sigmaErr = 0;
            if (randomized)
                for (int i = 0; i < r; i++) sigmaErr = Math.Max(sigmaErr, Math.Abs(values[i] - sigma[i]) / sigma[0]);
            return ratio >= 0.99 && ratio <= 1 + 1e-5 && sigmaErr <= 1e-3 ? Math.Sqrt(orth) : double.PositiveInfinity;
        }, F32Bound, ("ortho", "CholeskyQR2, host f64 l×l"), ("side", "Right (Q r×n)"));
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
}
