using Kernels.LowRank;
using Kernels.Tests.Harness;
using Xunit;

namespace Kernels.Tests.LowRank;

public class SubspaceTests
{
    private static readonly Kernels.Runtime.ComputeDevice Device = Devices.CpuSmall;

    /// <summary>A gradient-like spectrum: geometric decay, plus a clear gap after index r when asked.</summary>
    private static double[] Spectrum(int k, int r, double gap)
    {
        var s = new double[k];
        for (int i = 0; i < k; i++) s[i] = 10.0 * Math.Pow(0.85, i) * (i >= r ? gap : 1.0);
        return s;
    }

    [Theory]
    [InlineData(96, 64, 8, ProjectionSide.Left)]
    [InlineData(96, 64, 8, ProjectionSide.Right)]
    [InlineData(50, 77, 5, ProjectionSide.Left)]
    public void RandomizedSvdFindsTheTopSubspace(int m, int n, int r, ProjectionSide side)
    {
        var seed = Seeded.Create();
        // A gradient-like matrix: a decaying spectrum plus dense Gaussian noise, so the exact singular values are not
        // known in closed form; the reference is the exact SVD by one-sided Jacobi in f64.
        var g = LowRankData.WithSpectrum(seed, m, n, Spectrum(Math.Min(m, n), r, 1.0), out _, out _);
        var noise = seed.Normal((long)m * n, 0.05f);
        for (int i = 0; i < g.Length; i++) g[i] += noise[i];
        var (_, sigma, _) = LowRankReference.Svd(g, m, n);
        double exact = Math.Sqrt(sigma.Take(r).Sum(s => s * s));

        using var dg = Device.Upload<float>(g, m, n);
        using var basis = side == ProjectionSide.Left ? Device.Allocate<float>(m, r) : Device.Allocate<float>(r, n);
        Poison.Fill(basis);
        var values = new float[r];
        Subspace.RandomizedSvd(dg, side, powerIterations: 2, oversampling: 8, seed: (ulong)seed.Seed, basis, values);
        var b = basis.ToArray();
        Poison.AssertAllWritten<float>(b, "basis", seed);

        bool left = side == ProjectionSide.Left;
        double orth = LowRankData.OrthonormalityError(b, left ? m : r, left ? r : n, rowsAreVectors: !left);
        Assert.True(orth <= 1e-5, $"‖PᵀP − I‖_F = {orth:E2} > 1e-5 {seed.Tag}");
        double captured = LowRankData.CapturedEnergy(g, m, n, b, r, left);
        Assert.True(captured >= 0.99 * exact, $"captured energy {captured:F4} < 99% of exact {exact:F4} {seed.Tag}");
        Assert.True(captured <= exact * (1 + 1e-5), $"captured energy {captured} exceeds the optimum {exact} {seed.Tag}");
        // The leading singular values are separated enough to converge with q = 2.
        for (int i = 0; i < 3; i++)
            Assert.True(Math.Abs(values[i] - sigma[i]) <= 1e-2 * sigma[0], $"σ{i}: {values[i]} vs {sigma[i]} {seed.Tag}");
        for (int i = 1; i < r; i++) Assert.True(values[i] <= values[i - 1], $"σ not descending at {i} {seed.Tag}");
    }

    [Fact]
    public void RandomizedSvdRecoversAPlantedSpectrumExactly()
    {
        var seed = Seeded.Create();
        const int m = 96, n = 64, r = 8;
        var planted = Spectrum(20, r, 1.0); // rank 20, exact singular values known by construction
        var g = LowRankData.WithSpectrum(seed, m, n, planted, out _, out _);
        using var dg = Device.Upload<float>(g, m, n);
        using var basis = Device.Allocate<float>(m, r);
        var values = new float[r];
        Subspace.RandomizedSvd(dg, ProjectionSide.Left, 2, 8, 7UL, basis, values);
        for (int i = 0; i < r; i++)
            Assert.True(Math.Abs(values[i] - planted[i]) <= 1e-4 * planted[0], $"σ{i}: {values[i]} vs planted {planted[i]} {seed.Tag}");
    }

    /// <summary>
    /// Missed energy ‖G − P·Pᵀ·G‖²_F / ‖G‖²_F (Left) or ‖G − G·Qᵀ·Q‖²_F / ‖G‖²_F (Right) at the same passes over G as
    /// torch.svd_lowrank (q = 0, 1, 2 power iterations, l = r + 8), on a 200×120 matrix with the slowly decaying
    /// spectrum σᵢ = 1/√(i + 1) (no gap, the hard case for subspace methods) and random orthogonal U, V. The reference is
    /// torch's algorithm (<c>torch._lowrank._svd_lowrank</c> with <c>get_approximate_basis</c>) re-implemented in f64
    /// by <see cref="TorchLowRank"/> with its own Gaussian sketch. Compared is the excess over the optimum
    /// Σ_{i≥r} σᵢ² / Σ σᵢ² (known from the planted σ), averaged over 12 matrices and sketches: the library may miss at
    /// most 5 % more than torch, plus 4 standard errors of the paired mean difference (the sketches differ, so the
    /// means carry sampling noise; at q = 2 it is ~20 % of torch's excess with 12 matrices).
    /// <para>
    /// On the Right side the library runs torch's V computation (the sketch on the other side, the basis from B after
    /// the final pass), so torch fed the library's own Ω (same seed, n×l) must give the same missed energy per matrix,
    /// to rounding: that check has no sampling noise and a 2 % slack. On the Left side the library takes the basis
    /// from the last pass too, while torch's U (a tall matrix) is the span of its last sketch, half an iteration behind.
    /// </para>
    /// </summary>
    [Fact]
    public void RandomizedSvdMissesNoMoreEnergyThanTorchSvdLowrank()
    {
        const int m = 200, n = 120, r = 8, oversampling = 8, l = r + oversampling, matrices = 12, maxQ = 2;
        var seed = Seeded.Create();
        var sigma = Enumerable.Range(0, n).Select(i => 1 / Math.Sqrt(i + 1)).ToArray();
        double exact = sigma.Skip(r).Sum(s => s * s) / sigma.Sum(s => s * s);
        var library = new double[2, maxQ + 1];
        var torch = new double[2, maxQ + 1];
        var difference = new double[2, maxQ + 1, matrices]; // per matrix: library − torch, for the standard error
        var sameSketch = new System.Text.StringBuilder();
        var torchSameMean = new double[maxQ + 1];
        for (int t = 0; t < matrices; t++)
        {
            var data = Seeded.With(seed.Seed + 7919 * t);
            var g = LowRankData.WithSpectrum(data, m, n, sigma, out _, out _);
            using var dg = Device.Upload<float>(g, m, n);
            using var left = Device.Allocate<float>(m, r);
            using var right = Device.Allocate<float>(r, n);
            using var omega = Device.Allocate<float>(n, l);
            var values = new float[r];
            for (int q = 0; q <= maxQ; q++)
            {
                ulong sketch = (ulong)(seed.Seed + 7919L * t) * 4 + (ulong)q;
                Subspace.RandomizedSvd(dg, ProjectionSide.Left, q, oversampling, sketch, left, values);
                Subspace.RandomizedSvd(dg, ProjectionSide.Right, q, oversampling, sketch, right, values);
                var (u, v) = TorchLowRank.Svd(g, m, n, l, q, TorchLowRank.Gaussian(data, n * l));
                var got = new[]
                {
                    (Library: MissedEnergy(g, m, n, left.ToArray(), r, left: true),
                        Torch: MissedEnergy(g, m, n, TorchLowRank.Leading(u, m, l, r, transpose: false), r, left: true)),
                    (Library: MissedEnergy(g, m, n, right.ToArray(), r, left: false),
                        Torch: MissedEnergy(g, m, n, TorchLowRank.Leading(v, n, l, r, transpose: true), r, left: false)),
                };
                for (int side = 0; side < 2; side++)
                {
                    library[side, q] += got[side].Library / matrices;
                    torch[side, q] += got[side].Torch / matrices;
                    difference[side, q, t] = got[side].Library - got[side].Torch;
                }

                // The Right basis sketches the n columns side with an n×l Ω: exactly torch's R for this tall G.
                GaussianSketch.Fill(Device, omega.Span.View, (long)n * l, sketch);
                var (_, vSame) = TorchLowRank.Svd(g, m, n, l, q, omega.ToArray().Select(x => (double)x).ToArray());
                double torchSame = MissedEnergy(g, m, n, TorchLowRank.Leading(vSame, n, l, r, transpose: true), r, left: false);
                torchSameMean[q] += torchSame / matrices;
                if (got[1].Library - exact > (torchSame - exact) * 1.02 + 1e-7)
                    sameSketch.AppendLine($"matrix {t}, q = {q}: library {got[1].Library:F6} vs torch on the same Ω {torchSame:F6} (exact {exact:F6})");
            }
        }
        var table = new System.Text.StringBuilder();
        table.AppendLine($"missed energy, {m}×{n}, σᵢ = 1/√(i+1), r = {r}, l = {l}, mean of {matrices} {seed.Tag}");
        table.AppendLine("side   q   exact      library    torch      excess library/torch   ± s.e.   torch on the library's Ω");
        var allowance = new double[2, maxQ + 1];
        for (int side = 0; side < 2; side++)
            for (int q = 0; q <= maxQ; q++)
            {
                double mean = library[side, q] - torch[side, q], var = 0;
                for (int t = 0; t < matrices; t++) var += Math.Pow(difference[side, q, t] - mean, 2) / (matrices - 1);
                double torchExcess = torch[side, q] - exact, standardError = Math.Sqrt(var / matrices);
                allowance[side, q] = 0.05 * torchExcess + 4 * standardError;
                table.AppendLine($"{(side == 0 ? "Left " : "Right")}  {q}   {exact:F5}    {library[side, q]:F5}    {torch[side, q]:F5}    " +
                    $"{(library[side, q] - exact) / torchExcess,8:F3}               {standardError / torchExcess:F3}    " +
                    (side == 1 ? $"{torchSameMean[q]:F5}" : "(U: other sketch side)"));
            }
        TestContext.Current.TestOutputHelper?.WriteLine(table.ToString());
        Assert.True(sameSketch.Length == 0, $"Right side, same sketch as torch: the library misses more\n{sameSketch}{table}");
        for (int side = 0; side < 2; side++)
            for (int q = 0; q <= maxQ; q++)
            {
                Assert.True(library[side, q] >= exact * (1 - 1e-6), $"missed energy below the optimum: impossible\n{table}");
                Assert.True(library[side, q] - torch[side, q] <= allowance[side, q],
                    $"{(side == 0 ? "Left" : "Right")} q = {q}: the library misses more than torch.svd_lowrank\n{table}");
            }
    }

    /// <summary>‖G − P·Pᵀ·G‖²_F / ‖G‖²_F for P m×r (left), or ‖G − G·Qᵀ·Q‖²_F / ‖G‖²_F for Q r×n, in f64.</summary>
    private static double MissedEnergy(float[] g, int m, int n, float[] basis, int r, bool left)
    {
        double total = 0, missed = 0;
        for (int i = 0; i < g.Length; i++) total += (double)g[i] * g[i];
        if (left)
        {
            var coef = new double[r * n]; // Pᵀ·G
            for (int i = 0; i < m; i++)
                for (int k = 0; k < r; k++)
                    for (int j = 0; j < n; j++) coef[k * n + j] += (double)basis[i * r + k] * g[i * n + j];
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++)
                {
                    double e = g[i * n + j];
                    for (int k = 0; k < r; k++) e -= basis[i * r + k] * coef[k * n + j];
                    missed += e * e;
                }
        }
        else
        {
            var coef = new double[r]; // one row of G·Qᵀ at a time
            for (int i = 0; i < m; i++)
            {
                for (int k = 0; k < r; k++)
                {
                    double s = 0;
                    for (int j = 0; j < n; j++) s += (double)g[i * n + j] * basis[k * n + j];
                    coef[k] = s;
                }
                for (int j = 0; j < n; j++)
                {
                    double e = g[i * n + j];
                    for (int k = 0; k < r; k++) e -= coef[k] * basis[k * n + j];
                    missed += e * e;
                }
            }
        }
        return missed / total;
    }

    [Fact]
    public void WarmStartTracksADriftingGradientInTwoIterations()
    {
        var seed = Seeded.Create();
        const int m = 96, n = 64, r = 8;
        var spectrum = Spectrum(32, r, 0.1); // σ_{r+1}/σ_r = 0.085: each iteration contracts the error by ~140
        var g0 = LowRankData.WithSpectrum(seed, m, n, spectrum, out _, out _);
        var (u0, _, _) = LowRankReference.Svd(g0, m, n);
        // Drift: G1 = G0 + 0.05·‖G0‖-scaled noise, i.e. the subspace moves a little, as between GaLore refreshes.
        var noise = seed.Normal((long)m * n, 0.05f);
        var g1 = new float[m * n];
        for (int i = 0; i < g1.Length; i++) g1[i] = g0[i] + noise[i];
        var (_, s1, _) = LowRankReference.Svd(g1, m, n);
        double exact = Math.Sqrt(s1.Take(r).Sum(s => s * s));

        var p0 = new float[m * r];
        for (int i = 0; i < m; i++)
            for (int k = 0; k < r; k++) p0[i * r + k] = (float)u0[i * n + k];
        double before = LowRankData.CapturedEnergy(g1, m, n, p0, r, left: true);

        using var dg = Device.Upload<float>(g1, m, n);
        using var basis = Device.Upload<float>(p0, m, r);
        Subspace.WarmIterate(dg, ProjectionSide.Left, 2, basis);
        var p = basis.ToArray();
        double orth = LowRankData.OrthonormalityError(p, m, r, rowsAreVectors: false);
        Assert.True(orth <= 1e-5, $"‖PᵀP − I‖_F = {orth:E2} {seed.Tag}");
        double after = LowRankData.CapturedEnergy(g1, m, n, p, r, left: true);
        Assert.True(after >= 0.99 * exact, $"after 2 warm iterations {after:F5} < 99% of exact {exact:F5} (stale basis {before:F5}) {seed.Tag}");
        Assert.True(exact - after <= 0.1 * (exact - before) + 1e-4 * exact, $"warm iteration did not close the gap: stale {before}, now {after}, exact {exact} {seed.Tag}");
    }

    [Fact]
    public void WarmIterateOnTheRightSideMatchesTheLeftSideOfTheTranspose()
    {
        var seed = Seeded.Create();
        const int m = 40, n = 72, r = 6;
        var g = LowRankData.WithSpectrum(seed, m, n, Spectrum(20, r, 0.2), out _, out var v);
        // Start from a random basis: a cold start needs more iterations, which still must converge.
        var q0 = seed.Normal((long)r * n);
        using var dg = Device.Upload<float>(g, m, n);
        using var basis = Device.Upload<float>(q0, r, n);
        Subspace.WarmIterate(dg, ProjectionSide.Right, 4, basis);
        var q = basis.ToArray();
        Assert.True(LowRankData.OrthonormalityError(q, r, n, rowsAreVectors: true) <= 1e-5, seed.Tag);
        double exact = Math.Sqrt(Spectrum(20, r, 0.2).Take(r).Sum(s => s * s));
        double captured = LowRankData.CapturedEnergy(g, m, n, q, r, left: false);
        Assert.True(captured >= 0.99 * exact, $"captured {captured} vs exact {exact} {seed.Tag}");
        _ = v;
    }

    [Fact]
    public void BadArgumentsThrowAndWriteNothing()
    {
        var seed = Seeded.Create();
        using var dg = Device.Upload<float>(seed.Normal(30 * 20), 30, 20);
        using var basis = Device.Upload<float>(seed.Normal(30 * 4), 30, 4);
        var before = basis.ToArray();
        Assert.Throws<ArgumentOutOfRangeException>(() => Subspace.WarmIterate(dg, ProjectionSide.Left, 0, basis));
        Assert.Throws<ArgumentException>(() => Subspace.WarmIterate(dg, ProjectionSide.Right, 1, basis));
        Assert.Throws<ArgumentException>(() => Subspace.RandomizedSvd(dg, ProjectionSide.Left, 2, 8, 1, basis, new float[3]));
        Assert.Throws<ArgumentOutOfRangeException>(() => Subspace.RandomizedSvd(dg, ProjectionSide.Left, -1, 8, 1, basis, new float[4]));
        using var tooWide = Device.Allocate<float>(30, 21);
        Assert.ThrowsAny<ArgumentException>(() => Subspace.RandomizedSvd(dg, ProjectionSide.Left, 1, 8, 1, tooWide, new float[21]));
        Poison.AssertUnchanged(basis, before, "basis");
    }
}

/// <summary>
/// torch.svd_lowrank (torch/_lowrank.py: <c>get_approximate_basis</c> + <c>_svd_lowrank</c>, Halko et al. Alg. 4.4 +
/// 5.1) re-implemented in f64 for the tests, independent of the library: transpose to tall, R Gaussian n×l, Q = qr(A·R),
/// niter times Q = qr(Aᵀ·Q), Q = qr(A·Q); B = Qᵀ·A; U, S, Vᵀ = svd(B); U ← Q·U; swap U and V back if transposed.
/// QR is classical Gram–Schmidt run twice; the SVD of the l×n matrix B comes from the cyclic Jacobi eigensolver on B·Bᵀ.
/// </summary>
internal static class TorchLowRank
{
    /// <summary>torch.randn: standard normal samples, here from the test's generator.</summary>
    public static double[] Gaussian(Seeded rng, int count)
    {
        var x = new double[count];
        for (int i = 0; i < count; i++) x[i] = rng.NextNormal();
        return x;
    }

    /// <summary>U (m×l) and V (n×l), row-major, from the sketch R (row-major min(m, n)×l, torch's n×l of the tall matrix); columns by descending singular value.</summary>
    public static (double[] U, double[] V) Svd(float[] g, int m, int n, int l, int niter, double[] omega)
    {
        bool transpose = m < n;
        int rows = transpose ? n : m, cols = transpose ? m : n;
        var a = new double[rows * cols];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) a[transpose ? j * cols + i : i * cols + j] = g[i * n + j];
        var q = Qr(Multiply(a, rows, cols, omega, l, transposeA: false), rows, l);
        for (int it = 0; it < niter; it++)
        {
            var z = Qr(Multiply(a, rows, cols, q, l, transposeA: true), cols, l);
            q = Qr(Multiply(a, rows, cols, z, l, transposeA: false), rows, l);
        }
        var bt = Multiply(a, rows, cols, q, l, transposeA: true); // Bᵀ = Aᵀ·Q, cols×l
        // B·Bᵀ = (Bᵀ)ᵀ·Bᵀ, l×l: its eigenvectors are B's left singular vectors, its eigenvalues σ².
        var bbt = new double[l * l];
        for (int i = 0; i < l; i++)
            for (int j = 0; j < l; j++)
            {
                double s = 0;
                for (int k = 0; k < cols; k++) s += bt[k * l + i] * bt[k * l + j];
                bbt[i * l + j] = s;
            }
        var (values, vectors) = SymmetricEigen(bbt, l);
        var order = Enumerable.Range(0, l).OrderByDescending(k => values[k]).ToArray();
        var u = new double[rows * l];
        var v = new double[cols * l];
        for (int jj = 0; jj < l; jj++)
        {
            int j = order[jj];
            double sv = Math.Sqrt(Math.Max(values[j], 0));
            for (int i = 0; i < rows; i++)
            {
                double s = 0;
                for (int k = 0; k < l; k++) s += q[i * l + k] * vectors[k * l + j];
                u[i * l + jj] = s;
            }
            for (int i = 0; i < cols; i++)
            {
                double s = 0;
                for (int k = 0; k < l; k++) s += bt[i * l + k] * vectors[k * l + j];
                v[i * l + jj] = s / sv;
            }
        }
        return transpose ? (v, u) : (u, v);
    }

    /// <summary>The first r columns of a rows×l matrix as f32: rows×r, or r×rows with <paramref name="transpose"/>.</summary>
    public static float[] Leading(double[] x, int rows, int l, int r, bool transpose)
    {
        var y = new float[rows * r];
        for (int i = 0; i < rows; i++)
            for (int k = 0; k < r; k++) y[transpose ? k * rows + i : i * r + k] = (float)x[i * l + k];
        return y;
    }

    /// <summary>op(A)·X for A rows×cols; X has cols (or rows, transposed) rows and l columns.</summary>
    private static double[] Multiply(double[] a, int rows, int cols, double[] x, int l, bool transposeA)
    {
        int outRows = transposeA ? cols : rows, inner = transposeA ? rows : cols;
        var y = new double[outRows * l];
        for (int i = 0; i < outRows; i++)
            for (int k = 0; k < inner; k++)
            {
                double aik = transposeA ? a[k * cols + i] : a[i * cols + k];
                for (int j = 0; j < l; j++) y[i * l + j] += aik * x[k * l + j];
            }
        return y;
    }

    /// <summary>The Q of a thin QR of a rows×l matrix: classical Gram–Schmidt, twice ("twice is enough").</summary>
    private static double[] Qr(double[] x, int rows, int l)
    {
        var q = (double[])x.Clone();
        for (int j = 0; j < l; j++)
        {
            for (int pass = 0; pass < 2; pass++)
            {
                var dots = new double[j];
                for (int p = 0; p < j; p++)
                    for (int i = 0; i < rows; i++) dots[p] += q[i * l + p] * q[i * l + j];
                for (int i = 0; i < rows; i++)
                    for (int p = 0; p < j; p++) q[i * l + j] -= dots[p] * q[i * l + p];
            }
            double norm = 0;
            for (int i = 0; i < rows; i++) norm += q[i * l + j] * q[i * l + j];
            norm = Math.Sqrt(norm);
            for (int i = 0; i < rows; i++) q[i * l + j] /= norm;
        }
        return q;
    }

    /// <summary>Eigenvalues and eigenvectors (columns, row-major n×n) of a symmetric matrix by cyclic Jacobi rotations.</summary>
    private static (double[] Values, double[] Vectors) SymmetricEigen(double[] s, int n)
    {
        var a = (double[])s.Clone();
        var v = new double[n * n];
        for (int i = 0; i < n; i++) v[i * n + i] = 1;
        for (int sweep = 0; sweep < 100; sweep++)
        {
            double off = 0, diag = 0;
            for (int i = 0; i < n; i++)
                for (int j = 0; j < n; j++)
                    if (i != j) off += a[i * n + j] * a[i * n + j];
                    else diag += a[i * n + j] * a[i * n + j];
            if (off <= 1e-30 * diag) break;
            for (int p = 0; p < n - 1; p++)
                for (int q = p + 1; q < n; q++)
                {
                    double apq = a[p * n + q];
                    if (apq == 0) continue;
                    double theta = (a[q * n + q] - a[p * n + p]) / (2 * apq);
                    double t = Math.Sign(theta == 0 ? 1 : theta) / (Math.Abs(theta) + Math.Sqrt(theta * theta + 1));
                    double c = 1 / Math.Sqrt(t * t + 1), sn = t * c;
                    for (int k = 0; k < n; k++) // A ← A·J
                    {
                        double akp = a[k * n + p], akq = a[k * n + q];
                        a[k * n + p] = c * akp - sn * akq;
                        a[k * n + q] = sn * akp + c * akq;
                    }
                    for (int k = 0; k < n; k++) // A ← Jᵀ·A
                    {
                        double apk = a[p * n + k], aqk = a[q * n + k];
                        a[p * n + k] = c * apk - sn * aqk;
                        a[q * n + k] = sn * apk + c * aqk;
                    }
                    for (int k = 0; k < n; k++)
                    {
                        double vkp = v[k * n + p], vkq = v[k * n + q];
                        v[k * n + p] = c * vkp - sn * vkq;
                        v[k * n + q] = sn * vkp + c * vkq;
                    }
                }
        }
        var values = new double[n];
        for (int i = 0; i < n; i++) values[i] = a[i * n + i];
        return (values, v);
    }
}
