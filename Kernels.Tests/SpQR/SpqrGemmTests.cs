using ILGPU.Runtime.Cuda;
using Kernels.Engine;
using Kernels.Runtime;
using Kernels.SpQR;
using Kernels.Tensors;
using Kernels.Tests.Harness;
using Xunit;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Tests.SpQR;

public class SpqrGemmTests
{
    private static Half[] RunGemm(ComputeDevice device, SpqrPacked p, Half[] x, int tokens, int splits = 0, int shape = 0)
    {
        using var matrix = new SpqrMatrix(device, p);
        using var xd = DeviceTensor.FromHalf(device, x, tokens, p.Columns);
        using var y = device.Allocate<DeviceHalf>(tokens, p.Rows);
        Poison.Fill(y);
        Spqr.Gemm(matrix, xd, y, splits, shape);
        var result = new Half[tokens * p.Rows];
        y.CopyTo(result);
        Poison.AssertAllWritten<DeviceHalf>(y.ToArray(), "gemm");
        return result;
    }

    [Theory]
    [InlineData(37, 50, 5, SpqrSparseLayout.Ptcsr)]
    public void IsExactOnIntegerData(int m, int n, int tokens, SpqrSparseLayout layout)
    {
        var seed = Seeded.Create();
        var (u, w) = SpqrTestData.Integer(m, n, seed);
        var p = SpqrPacking.Pack(u, layout);
        var x = SpqrTestData.IntegerX(tokens * n, seed);
        var expected = new Half[tokens * m];
        for (int t = 0; t < tokens; t++)
            for (int r = 0; r < m; r++)
            {
                double acc = 0;
                for (int c = 0; c < n; c++) acc += w[r * n + c] * (double)x[t * n + c];
                expected[t * m + r] = (Half)acc;
            }
        var got = RunGemm(Devices.CpuWarp32, p, x, tokens);
        // integer weights, activations and sums below 2^24: every f32 partial is exact, so only the final rounding differs by path
        Compare.Exact<ushort>(got.Select(BitConverter.HalfToUInt16Bits).ToArray(), expected.Select(BitConverter.HalfToUInt16Bits).ToArray(),
            $"gemm {m}x{n} N={tokens} {layout}", seed);
    }

    [Theory]
    // 17 tokens: the wide tile (64-row weight tiles, one 16-byte load per thread), with split-K over two M tiles:
    // outlier cursors start mid-row and the partials are reduced in split order. (One case: every engine
    // specialization costs seconds of compilation on the CPU accelerator.)
    [InlineData(100, 200, 17, 2, 0)]
    public void MatchesTheReferenceOnEncodedData(int m, int n, int tokens, int splits, int shape)
    {
        var seed = Seeded.Create();
        var (p, _) = SpqrTestData.Random(m, n, seed);
        var x = SpqrTestData.RandomX(tokens * n, seed);
        var got = RunGemm(Devices.CpuWarp32, p, x, tokens, splits, shape);
        var expected = new double[tokens * m];
        for (int t = 0; t < tokens; t++)
            SpqrReference.GemvSums(p, x.AsSpan(t * n, n)).CopyTo(expected, t * m);
        Compare.Close(got.Select(h => (float)h).ToArray(), expected, Compare.F16, $"gemm {m}x{n} N={tokens} splits={splits}", seed);
    }

    [Fact]
    public void RejectsBadShapes()
    {
        var device = Devices.CpuWarp32;
        var (u, _) = SpqrTestData.Integer(20, 30, Seeded.With(5));
        using var matrix = new SpqrMatrix(device, SpqrPacking.Pack(u));
        using var x = device.Allocate<DeviceHalf>(4, 31);
        using var y = device.Allocate<DeviceHalf>(4, 20);
        Assert.Equal("x", Assert.Throws<ArgumentException>(() => Spqr.Gemm(matrix, x, y)).ParamName);
        using var x2 = device.Allocate<DeviceHalf>(4, 30);
        using var y2 = device.Allocate<DeviceHalf>(3, 20);
        Poison.Fill(y2);
        Assert.Equal("y", Assert.Throws<ArgumentException>(() => Spqr.Gemm(matrix, x2, y2)).ParamName);
        Assert.All(y2.ToArray(), h => Assert.True(DeviceHalf.IsNaN(h)));
    }

    [Fact]
    public void EngineKernelWithTheSpqrProducerUsesTensorCoresAndVectorLoads()
    {
        var m = typeof(TileEngine).GetMethod(nameof(TileEngine.Kernel))!
            .MakeGenericMethod(typeof(SkinnyTile), typeof(F16Mma), typeof(SpqrTileProducer), typeof(StoreEpilogue<DeviceHalf, F16>));
        var ptx = Ptx.Compile(m, CudaArchitecture.SM_80);
        Assert.Contains("mma.sync.aligned.m16n8k16", ptx);
        Assert.Contains("ldmatrix", ptx);
        Assert.Contains("ld.global.v4.b32", ptx);
        Assert.DoesNotContain("cvt.rn.f64", ptx);
    }

    [Fact]
    public void OnCudaMatchesTheReference()
    {
        var device = Devices.RequireCuda();
        var seed = Seeded.Create();
        // 16 tokens: skinny tile with split-K; 64: the large tile (not run on the CPU: its compile alone costs ~20 s); 2: tiny
        foreach (var (m, n, tokens) in new[] { (4096, 4096, 16), (1000, 3000, 64), (37, 50, 2) })
        {
            var (p, _) = SpqrTestData.Random(m, n, seed, m > 1000 ? SpqrSparseLayout.Csr : SpqrSparseLayout.Ptcsr);
            var x = SpqrTestData.RandomX(tokens * n, seed);
            var got = RunGemm(device, p, x, tokens);
            var expected = new double[tokens * m];
            for (int t = 0; t < tokens; t++) SpqrReference.GemvSums(p, x.AsSpan(t * n, n)).CopyTo(expected, t * m);
            Compare.Close(got.Select(h => (float)h).ToArray(), expected, Compare.F16, $"cuda gemm {m}x{n} N={tokens}", seed);
        }
    }
}
