using Kernels.LowRank;
using Kernels.Tests.Harness;
using Xunit;

namespace Kernels.Tests.LowRank;

public class GaLoreTests
{
    private static readonly Kernels.Runtime.ComputeDevice Device = Devices.CpuSmall;

    [Theory]
    [InlineData(45, 70, 7, ProjectionSide.Left)]
    [InlineData(70, 45, 7, ProjectionSide.Right)]
    [InlineData(33, 33, 1, ProjectionSide.Left)]
    [InlineData(3, 130, 3, ProjectionSide.Right)]
    public void ProjectMatchesF64(int m, int n, int r, ProjectionSide side)
    {
        var seed = Seeded.Create();
        var g = seed.Normal((long)m * n);
        var p = seed.Normal(side == ProjectionSide.Left ? (long)m * r : (long)r * n);
        using var dg = Device.Upload<float>(g, m, n);
        using var dp = side == ProjectionSide.Left ? Device.Upload<float>(p, m, r) : Device.Upload<float>(p, r, n);
        using var dr = side == ProjectionSide.Left ? Device.Allocate<float>(r, n) : Device.Allocate<float>(m, r);
        Poison.Fill(dr);
        GaLore.Project(dg, dp, side, dr);
        var got = dr.ToArray();
        Poison.AssertAllWritten<float>(got, "R", seed);
        Compare.Close(got, LowRankReference.Project(g, m, n, p, r, side), Compare.F32, $"R ({side} {m}×{n} r={r})", seed);
    }

    [Fact]
    public void SideFollowsGaLoreStdRule()
    {
        Assert.Equal(ProjectionSide.Right, GaLore.SideFor(11008, 4096));
        Assert.Equal(ProjectionSide.Left, GaLore.SideFor(4096, 11008));
        Assert.Equal(ProjectionSide.Right, GaLore.SideFor(64, 64));
    }

    [Theory]
    [InlineData(45, 70, 7, ProjectionSide.Left)]
    [InlineData(70, 45, 9, ProjectionSide.Right)]
    public void BackProjectMatchesF64(int m, int n, int r, ProjectionSide side)
    {
        var seed = Seeded.Create();
        var nLow = seed.Normal(side == ProjectionSide.Left ? (long)r * n : (long)m * r);
        var p = seed.Normal(side == ProjectionSide.Left ? (long)m * r : (long)r * n);
        using var dn = side == ProjectionSide.Left ? Device.Upload<float>(nLow, r, n) : Device.Upload<float>(nLow, m, r);
        using var dp = side == ProjectionSide.Left ? Device.Upload<float>(p, m, r) : Device.Upload<float>(p, r, n);
        using var dw = Device.Allocate<float>(m, n);
        Poison.Fill(dw);
        using (var rec = LowRankWorkspace.Record())
        {
            GaLore.BackProject(dn, dp, side, 0.25f, dw);
            Assert.Empty(rec.Requests);
        }
        var got = dw.ToArray();
        Poison.AssertAllWritten<float>(got, "ΔW", seed);
        Compare.Close(got, LowRankReference.BackProject(nLow, p, m, n, r, side, 0.25f), Compare.F32, $"ΔW ({side})", seed);
    }

    [Theory]
    [InlineData(45, 70, 7, ProjectionSide.Left, 0f)]
    [InlineData(70, 66, 64, ProjectionSide.Right, 0.1f)]
    public void FusedApplyUpdatesWeightsWithoutAFullSizeTemporary(int m, int n, int r, ProjectionSide side, float decay)
    {
        var seed = Seeded.Create();
        var nLow = seed.Normal(side == ProjectionSide.Left ? (long)r * n : (long)m * r);
        var p = seed.Normal(side == ProjectionSide.Left ? (long)m * r : (long)r * n);
        var w = seed.Normal((long)m * n);
        using var dn = side == ProjectionSide.Left ? Device.Upload<float>(nLow, r, n) : Device.Upload<float>(nLow, m, r);
        using var dp = side == ProjectionSide.Left ? Device.Upload<float>(p, m, r) : Device.Upload<float>(p, r, n);
        using var dw = Device.Upload<float>(w, m, n);
        using (var rec = LowRankWorkspace.Record())
        {
            GaLore.ApplyUpdate(dn, dp, side, 0.01f, 0.25f, dw, decay);
            Assert.Empty(rec.Requests); // P·N is folded into W tile by tile, never stored
        }
        Compare.Close(dw.ToArray(), LowRankReference.ApplyUpdate(nLow, p, m, n, r, side, 0.01f, 0.25f, w, decay), Compare.F32, "W", seed);
    }

    /// <summary>
    /// Both weight-decay orders against an f64 reference written here: BeforeUpdate (torch.optim.AdamW)
    /// W' = (1 − lr·λ)·W − lr·α·P·N and AfterUpdate (galore_torch.AdamW) W' = (1 − lr·λ)·(W − lr·α·P·N). lr·λ = 0.2
    /// makes the orders differ by 0.2·lr·α·P·N, far above f32 rounding, so a swapped or ignored order fails.
    /// </summary>
    [Theory]
    [InlineData(37, 53, 5, ProjectionSide.Left, WeightDecayOrder.BeforeUpdate)]
    [InlineData(37, 53, 5, ProjectionSide.Left, WeightDecayOrder.AfterUpdate)]
    [InlineData(61, 29, 6, ProjectionSide.Right, WeightDecayOrder.BeforeUpdate)]
    [InlineData(61, 29, 6, ProjectionSide.Right, WeightDecayOrder.AfterUpdate)]
    public void WeightDecayOrderMatchesItsOptimizer(int m, int n, int r, ProjectionSide side, WeightDecayOrder order)
    {
        const float lr = 0.5f, scale = 0.25f, decay = 0.4f;
        var seed = Seeded.Create();
        bool left = side == ProjectionSide.Left;
        var nLow = seed.Normal(left ? (long)r * n : (long)m * r);
        var p = seed.Normal(left ? (long)m * r : (long)r * n);
        var w = seed.Normal((long)m * n);
        using var dn = left ? Device.Upload<float>(nLow, r, n) : Device.Upload<float>(nLow, m, r);
        using var dp = left ? Device.Upload<float>(p, m, r) : Device.Upload<float>(p, r, n);
        using var dw = Device.Upload<float>(w, m, n);
        GaLore.ApplyUpdate(dn, dp, side, lr, scale, dw, decay, order);

        var expected = new double[m * n];
        var other = new double[m * n];
        double keep = 1 - (double)lr * decay;
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double pn = 0; // (P·N)[i, j] or (N·Q)[i, j]
                for (int k = 0; k < r; k++)
                    pn += left ? (double)p[i * r + k] * nLow[k * n + j] : (double)nLow[i * r + k] * p[k * n + j];
                double step = (double)lr * scale * pn;
                double before = keep * w[i * n + j] - step, after = keep * (w[i * n + j] - step);
                expected[i * n + j] = order == WeightDecayOrder.AfterUpdate ? after : before;
                other[i * n + j] = order == WeightDecayOrder.AfterUpdate ? before : after;
            }
        var got = dw.ToArray();
        Compare.Close(got, expected, Compare.F32, $"W ({side}, {order})", seed);
        double distance = 0, norm = 0;
        for (int i = 0; i < got.Length; i++)
        {
            distance += Math.Pow(got[i] - other[i], 2);
            norm += other[i] * other[i];
        }
        Assert.True(Math.Sqrt(distance / norm) > 1e-2, $"the two orders are indistinguishable at these parameters {seed.Tag}");
    }

    [Fact]
    public void BadShapesThrowAndWriteNothing()
    {
        var seed = Seeded.Create();
        using var dg = Device.Upload<float>(seed.Normal(20 * 30), 20, 30);
        using var dp = Device.Upload<float>(seed.Normal(20 * 4), 20, 4);
        using var dr = Device.Upload<float>(seed.Normal(4 * 30), 4, 30);
        var before = dr.ToArray();
        // Left projector used as Right; wrong result shape; result overlapping the gradient; non-finite scale.
        Assert.Throws<ArgumentException>(() => GaLore.Project(dg, dp, ProjectionSide.Right, dr));
        using var wrong = Device.Allocate<float>(4, 29);
        Assert.Throws<ArgumentException>(() => GaLore.Project(dg, dp, ProjectionSide.Left, wrong));
        Assert.Throws<ArgumentException>(() => GaLore.Project(dg, dp, ProjectionSide.Left, dg.Span.Slice(0..4)));
        using var dw = Device.Upload<float>(seed.Normal(20 * 30), 20, 30);
        var wBefore = dw.ToArray();
        Assert.Throws<ArgumentOutOfRangeException>(() => GaLore.ApplyUpdate(dr, dp, ProjectionSide.Left, float.NaN, 1f, dw));
        Assert.Throws<ArgumentException>(() => GaLore.ApplyUpdate(dr, dp, ProjectionSide.Left, 0.1f, 1f, dp.Span.Slice(0..20)));
        Assert.Equal("weightDecayOrder", Assert.Throws<ArgumentOutOfRangeException>(
            () => GaLore.ApplyUpdate(dr, dp, ProjectionSide.Left, 0.1f, 1f, dw, 0.1f, (WeightDecayOrder)7)).ParamName);
        Poison.AssertUnchanged(dr, before, "R");
        Poison.AssertUnchanged(dw, wBefore, "W");
    }
}
