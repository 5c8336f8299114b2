using ILGPU.Runtime.Cuda;
using Kernels.Runtime;
using Kernels.SpQR;
using Kernels.Tensors;
using Kernels.Tests.Harness;
using Xunit;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Tests.SpQR;

public class SpqrKernelTests
{
    private static Half[] RunDecode(ComputeDevice device, SpqrPacked p)
    {
        using var matrix = new SpqrMatrix(device, p);
        using var output = device.Allocate<DeviceHalf>(p.Rows, p.Columns);
        Poison.Fill(output);
        Spqr.Decode(matrix, output);
        var result = new Half[p.Rows * p.Columns];
        output.CopyTo(result);
        Poison.AssertAllWritten<DeviceHalf>(output.ToArray(), "decode");
        return result;
    }

    private static Half[] RunGemv(ComputeDevice device, SpqrPacked p, Half[] x, int? groupSize = null)
    {
        using var matrix = new SpqrMatrix(device, p);
        using var xd = DeviceTensor.FromHalf(device, x, x.Length);
        using var y = device.Allocate<DeviceHalf>(p.Rows);
        Poison.Fill(y);
        Spqr.Gemv(matrix, xd, y, groupSize);
        var result = new Half[p.Rows];
        y.CopyTo(result);
        Poison.AssertAllWritten<DeviceHalf>(y.ToArray(), "gemv");
        return result;
    }

    private static ushort[] Bits(Half[] h) => h.Select(BitConverter.HalfToUInt16Bits).ToArray();

    [Theory]
    [InlineData(16, 16, SpqrSparseLayout.Csr)]
    [InlineData(37, 50, SpqrSparseLayout.Csr)]
    [InlineData(37, 50, SpqrSparseLayout.Ptcsr)]
    [InlineData(3, 5, SpqrSparseLayout.Csr)]
    public void DecodeIsBitExactOnIntegerData(int m, int n, SpqrSparseLayout layout)
    {
        var seed = Seeded.Create();
        var (u, expected) = SpqrTestData.Integer(m, n, seed);
        var p = SpqrPacking.Pack(u, layout);
        var got = RunDecode(Devices.CpuSmall, p);
        Compare.Exact<float>(got.Select(h => (float)h).ToArray(), expected, $"decode {m}x{n} {layout}", seed);
    }

    [Theory]
    [InlineData(32, 48, SpqrSparseLayout.Csr)]
    [InlineData(21, 45, SpqrSparseLayout.Ptcsr)]
    public void DecodeIsBitExactWithTheReferenceOnEncodedData(int m, int n, SpqrSparseLayout layout)
    {
        var seed = Seeded.Create();
        var (p, _) = SpqrTestData.Random(m, n, seed, layout);
        Assert.True(p.OutlierCount > 0, seed.Tag);
        var expected = new Half[m * n];
        SpqrReference.Decode(p, expected);
        Compare.Exact<ushort>(Bits(RunDecode(Devices.CpuSmall, p)), Bits(expected), $"decode {m}x{n}", seed);
    }

    [Theory]
    [InlineData(16, 16, SpqrSparseLayout.Csr)]
    [InlineData(37, 50, SpqrSparseLayout.Csr)]
    [InlineData(37, 50, SpqrSparseLayout.Ptcsr)]
    [InlineData(1, 7, SpqrSparseLayout.Csr)]
    [InlineData(40, 160, SpqrSparseLayout.Csr)]
    public void GemvIsBitExactOnIntegerData(int m, int n, SpqrSparseLayout layout)
    {
        var seed = Seeded.Create();
        var (u, w) = SpqrTestData.Integer(m, n, seed);
        var p = SpqrPacking.Pack(u, layout);
        var x = SpqrTestData.IntegerX(n, seed);
        // Independent expectation: the closed-form W times x, exact in double, one fp16 rounding.
        var expected = new Half[m];
        for (int r = 0; r < m; r++)
        {
            double acc = 0;
            for (int c = 0; c < n; c++) acc += w[r * n + c] * (double)x[c];
            expected[r] = (Half)acc;
        }
        var reference = new Half[m];
        SpqrReference.Gemv(p, x, reference);
        Compare.Exact<ushort>(Bits(reference), Bits(expected), "reference gemv", seed);
        Compare.Exact<ushort>(Bits(RunGemv(Devices.CpuWarp32, p, x)), Bits(expected), $"gemv {m}x{n} {layout}", seed);
    }

    [Fact]
    public void GemvWithSeveralWarpsPerGroupMatchesOneWarp()
    {
        // The GPU runs 8 warps a group (cross-warp reduction through shared memory); the CPU default is one warp.
        var seed = Seeded.Create();
        var (u, _) = SpqrTestData.Integer(37, 150, seed);
        var p = SpqrPacking.Pack(u, SpqrSparseLayout.Ptcsr);
        var x = SpqrTestData.IntegerX(150, seed);
        var expected = new Half[37];
        SpqrReference.Gemv(p, x, expected);
        Compare.Exact<ushort>(Bits(RunGemv(Devices.CpuWarp32, p, x, groupSize: 128)), Bits(expected), "gemv 4 warps", seed);
    }

    [Theory]
    [InlineData(48, 96, SpqrSparseLayout.Csr)]
    [InlineData(23, 41, SpqrSparseLayout.Ptcsr)]
    public void GemvMatchesTheReferenceOnEncodedData(int m, int n, SpqrSparseLayout layout)
    {
        var seed = Seeded.Create();
        var (p, _) = SpqrTestData.Random(m, n, seed, layout);
        var x = SpqrTestData.RandomX(n, seed);
        var sums = SpqrReference.GemvSums(p, x);
        var got = RunGemv(Devices.CpuWarp32, p, x);
        Compare.Close(got.Select(h => (float)h).ToArray(), sums, Compare.F16, $"gemv {m}x{n} {layout}", seed);
    }

    [Fact]
    public void ThinMatrixWithUnsignedColumnsAbove32767()
    {
        var seed = Seeded.Create();
        const int m = 3, n = 33000;
        var (u, w) = SpqrTestData.Integer(m, n, seed, outlierRate: 0.0005);
        // make sure outliers sit in columns ≥ 32768 (SpQR's kernel would sign-extend these)
        u.OutlierRowOffsets = [0, 1, 2, 3];
        u.OutlierColumns = [32768, 40, 32999];
        u.OutlierValues = [0x4000, 0xBC00, 0x3C00];
        var p = SpqrPacking.Pack(u);
        var x = SpqrTestData.IntegerX(n, seed);
        for (int j = 0; j < n; j++)
            if (x[j] == (Half)0) x[j] = (Half)1; // every column then contributes, wherever the permutation sends it
        var expected = new Half[m];
        SpqrReference.Gemv(p, x, expected);
        // The outliers count: every row's exact sum moves without them. (Compared in f64: an fp16 result of a
        // 33000-term sum can absorb a ±1 outlier's contribution in rounding.)
        var plain = SpqrPacking.Pack(new Func<SpqrUnpacked>(() => { u.OutlierRowOffsets = [0, 0, 0, 0]; u.OutlierColumns = []; u.OutlierValues = []; return u; })());
        var withSums = SpqrReference.GemvSums(p, x);
        var withoutSums = SpqrReference.GemvSums(plain, x);
        for (int r = 0; r < m; r++)
            Assert.True(withSums[r] != withoutSums[r], $"row {r}: the outlier did not change the sum {seed.Tag}");
        Compare.Exact<ushort>(Bits(RunGemv(Devices.CpuWarp32, p, x)), Bits(expected), "gemv n=33000", seed);
        var decoded = RunDecode(Devices.CpuSmall, p);
        var refDecoded = new Half[m * n];
        SpqrReference.Decode(p, refDecoded);
        Compare.Exact<ushort>(Bits(decoded), Bits(refDecoded), "decode n=33000", seed);
        _ = w;
    }

    private static void AssertStillPoisoned(DeviceTensor<DeviceHalf> t, string what)
    {
        foreach (var h in t.ToArray())
            Assert.True(DeviceHalf.IsNaN(h), $"{what}: written by a rejected call");
    }

    [Fact]
    public void RejectsBadShapesAndWritesNothing()
    {
        var device = Devices.CpuWarp32;
        var (u, _) = SpqrTestData.Integer(20, 30, Seeded.With(3));
        using var matrix = new SpqrMatrix(device, SpqrPacking.Pack(u));
        using var wrong = device.Allocate<DeviceHalf>(20, 31);
        Poison.Fill(wrong);
        var e = Assert.Throws<ArgumentException>(() => Spqr.Decode(matrix, wrong));
        Assert.Equal("output", e.ParamName);
        AssertStillPoisoned(wrong, "decode output");

        using var x = device.Allocate<DeviceHalf>(29);
        using var y = device.Allocate<DeviceHalf>(20);
        Poison.Fill(y);
        Assert.Equal("x", Assert.Throws<ArgumentException>(() => Spqr.Gemv(matrix, x, y)).ParamName);
        using var x30 = device.Allocate<DeviceHalf>(30);
        using var y19 = device.Allocate<DeviceHalf>(19);
        Assert.Equal("y", Assert.Throws<ArgumentException>(() => Spqr.Gemv(matrix, x30, y19)).ParamName);
        AssertStillPoisoned(y, "gemv output");
        using var other = Devices.CpuSmall.Allocate<DeviceHalf>(30);
        Assert.Equal("x", Assert.Throws<ArgumentException>(() => Spqr.Gemv(matrix, other, y)).ParamName);
    }

    [Fact]
    public void GemvEmitsSixteenByteLoads()
    {
        foreach (var arch in new[] { CudaArchitecture.SM_80, CudaArchitecture.SM_90 })
        {
            var ptx = Ptx.Compile(Ptx.Method(typeof(SpqrGemvKernel), nameof(SpqrGemvKernel.Kernel)), arch);
            Assert.Contains("ld.global.v4.b32", ptx);
            Assert.Contains("shfl.sync.bfly", ptx);
            Assert.Contains("cvt.rn.f16.f32", ptx);
            Assert.DoesNotContain("FusedMultiplyAdd", ptx);
            Assert.DoesNotContain(".local", ptx); // no spilled register tiles
            Assert.DoesNotContain("cvt.rn.f64", ptx); // codes convert to f32 directly, not through f64
        }
        var decode = Ptx.Compile(Ptx.Method(typeof(SpqrDecodeKernels), nameof(SpqrDecodeKernels.Dense)));
        Assert.Contains(".entry", decode);
    }

    [Fact]
    public void GemvAndDecodeOnCudaMatchTheReference()
    {
        var device = Devices.RequireCuda();
        var seed = Seeded.Create();
        foreach (var (m, n, layout) in new[] { (4096, 4096, SpqrSparseLayout.Csr), (333, 40000, SpqrSparseLayout.Ptcsr), (37, 50, SpqrSparseLayout.Csr) })
        {
            var (p, _) = SpqrTestData.Random(m, n, seed, layout);
            var x = SpqrTestData.RandomX(n, seed);
            Compare.Close(RunGemv(device, p, x).Select(h => (float)h).ToArray(), SpqrReference.GemvSums(p, x), Compare.F16, $"cuda gemv {m}x{n}", seed);
            var expected = new Half[m * n];
            SpqrReference.Decode(p, expected);
            Compare.Exact<ushort>(Bits(RunDecode(device, p)), Bits(expected), $"cuda decode {m}x{n}", seed);
        }
        var (u, _) = SpqrTestData.Integer(100, 300, seed);
        var pi = SpqrPacking.Pack(u);
        var xi = SpqrTestData.IntegerX(300, seed);
        var yi = new Half[100];
        SpqrReference.Gemv(pi, xi, yi);
        Compare.Exact<ushort>(Bits(RunGemv(device, pi, xi)), Bits(yi), "cuda gemv integer", seed);
    }
}
