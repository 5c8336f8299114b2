using ILGPU;
using ILGPU.Runtime.Cuda;
using Kernels.LowRank;
using Kernels.Tests.Harness;
using Xunit;

namespace Kernels.Tests.LowRank;

public class SimtGemmTests
{
    private static readonly Kernels.Runtime.ComputeDevice Device = Devices.CpuSmall;

    [Theory]
    [InlineData(false, false, 37, 29, 43)]
    [InlineData(false, true, 37, 29, 43)]
    [InlineData(true, false, 33, 40, 17)]
    [InlineData(true, true, 5, 71, 9)]
    [InlineData(false, false, 1, 1, 1)]
    [InlineData(false, false, 64, 32, 24)]
    public void EveryLayoutMatchesF64(bool ta, bool tb, int m, int n, int k)
    {
        var seed = Seeded.Create();
        // Stored shapes: A is m×k (or k×m), B is k×n (or n×k).
        int lda = ta ? m : k, ldb = tb ? k : n;
        var a = seed.Normal((long)m * k);
        var b = seed.Normal((long)k * n);
        var c0 = seed.Normal((long)m * n);
        using var da = Device.Upload<float>(a, ta ? k : m, ta ? m : k);
        using var db = Device.Upload<float>(b, tb ? n : k, tb ? k : n);
        using var dc = Device.Upload<float>(c0, m, n);
        var am = MatrixRef.Of(da.ReadOnlySpan);
        var bm = MatrixRef.Of(db.ReadOnlySpan);
        if (ta) am = am.T;
        if (tb) bm = bm.T;
        using var ws = Device.Allocate<float>((nint)Math.Max(1, SimtGemm.WorkspaceFor(Device, m, n, k)));
        SimtGemm.Multiply(Device, am, bm, MatrixRef.Of(dc.Span), 0.5f, -2f, ws.Span.View.AsContiguous());
        var expected = LowRankData.Gemm(a, ta, lda, b, tb, ldb, m, n, k);
        for (int i = 0; i < expected.Length; i++) expected[i] = 0.5 * expected[i] - 2.0 * c0[i];
        Compare.Close(dc.ToArray(), expected, Compare.F32, $"C = 0.5·A·B − 2·C ({(ta ? "T" : "N")}{(tb ? "T" : "N")} {m}×{n}×{k})", seed);
    }

    [Fact]
    public void StridedAndUnalignedViewsTakeTheScalarPathCorrectly()
    {
        var seed = Seeded.Create();
        const int m = 19, k = 13, n = 22;
        var full = seed.Normal(m * 17L);
        using var dfull = Device.Upload<float>(full, m, 17);
        var a = dfull.ReadOnlySpan.Slice(.., 3..16); // m×13, row stride 17, starts at element 3 (not 16-byte aligned)
        var b = seed.Normal((long)k * n);
        using var db = Device.Upload<float>(b, k, n);
        using var dc = Device.Allocate<float>(m, n);
        Poison.Fill(dc);
        SimtGemm.Multiply(Device, MatrixRef.Of(a), MatrixRef.Of(db.ReadOnlySpan), MatrixRef.Of(dc.Span), 1f, 0f, default, splitsOverride: 1);
        var aHost = new float[m * k];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < k; j++) aHost[i * k + j] = full[i * 17 + 3 + j];
        var got = dc.ToArray();
        Poison.AssertAllWritten<float>(got, "C", seed);
        Compare.Close(got, LowRankData.Gemm(aHost, false, k, b, false, n, m, n, k), Compare.F32, "strided A·B", seed);
    }

    [Fact]
    public void SplitKGramIsDeterministicAndExact()
    {
        var seed = Seeded.Create();
        const int rows = 203, l = 6;
        var y = seed.Normal(rows * l);
        using var dy = Device.Upload<float>(y, rows, l);
        using var dc = Device.Allocate<float>(l, l);
        int splits = SimtGemm.SplitsFor(Device, l, l, rows);
        Assert.True(splits > 1, $"the tall-skinny Gram should split K (got {splits})");
        using var ws = Device.Allocate<float>((nint)SimtGemm.WorkspaceFor(Device, l, l, rows));
        var ym = MatrixRef.Of(dy.ReadOnlySpan);
        SimtGemm.Multiply(Device, ym.T, ym, MatrixRef.Of(dc.Span), 1f, 0f, ws.Span.View.AsContiguous());
        var first = dc.ToArray();
        Poison.Fill(dc);
        SimtGemm.Multiply(Device, ym.T, ym, MatrixRef.Of(dc.Span), 1f, 0f, ws.Span.View.AsContiguous());
        Compare.Exact<float>(dc.ToArray(), first, "Gram matrix, run 2 vs run 1", seed);
        Compare.Close(first, LowRankData.Gemm(y, true, l, y, false, l, l, l, rows), Compare.F32, "YᵀY", seed);
    }

    // NN and TT between them take both branches of the tile loader for both operands (k-contiguous and not).
    [Theory]
    [InlineData(false, false)]
    [InlineData(true, true)]
    public void PtxHasVectorLoadsAndNoLocalMemory(bool ta, bool tb)
    {
        var a = ta ? typeof(TransposedLayout) : typeof(NormalLayout);
        var b = tb ? typeof(TransposedLayout) : typeof(NormalLayout);
        var method = Ptx.Method(typeof(SimtGemm), nameof(SimtGemm.GemmKernel), a, b);
        foreach (var arch in ta ? new[] { CudaArchitecture.SM_80 } : new[] { CudaArchitecture.SM_80, CudaArchitecture.SM_90 })
        {
            var ptx = Ptx.Compile(method, arch);
            Assert.Contains("ld.global.v4.f32", ptx);
            Assert.Contains("st.global.v4.f32", ptx);
            Assert.Contains("ld.shared.v4.f32", ptx);
            Assert.DoesNotContain("FusedMultiplyAdd", ptx);
            Assert.DoesNotContain(".local", ptx); // the 8×8 register tile must stay in registers
        }
    }
}
