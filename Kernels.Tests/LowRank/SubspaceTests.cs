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
