using ILGPU.Runtime.Cuda;
using Kernels.Engine;
using Kernels.LowRank;
using Kernels.Runtime;
using Kernels.Tensors;
using Kernels.Tests.Harness;
using Xunit;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Tests.LowRank;

public class StreamMatmulTests
{
    private static (float[] X, float[] V, float[] S, float[] U, float[] Bias) Operands<T>(Seeded seed, int m, int k, int n, int r) where T : unmanaged
    {
        // Round to the storage type first so the f64 reference sees exactly what the device sees.
        float[] Round(float[] a) => Compare.ToFloat<T>(ElementTypes.FromFloat<T>(a));
        return (Round(seed.Normal((long)m * k)), Round(seed.Normal((long)k * r, 1f / MathF.Sqrt(k))), seed.Uniform(r, 0.5f, 2f),
            Round(seed.Normal((long)n * r, 1f / MathF.Sqrt(r))), Round(seed.Normal(n, 0.1f)));
    }

    private static void Check<T>(ComputeDevice device, int m, int k, int n, int r, bool withBias, StreamMatmulPath expected) where T : unmanaged
    {
        var seed = Seeded.Create();
        var (x, v, s, u, b) = Operands<T>(seed, m, k, n, r);
        using var dx = device.Upload(ElementTypes.FromFloat<T>(x), m, k);
        using var dv = device.Upload(ElementTypes.FromFloat<T>(v), k, r);
        using var ds = device.Upload<float>(s, r);
        using var du = device.Upload(ElementTypes.FromFloat<T>(u), n, r);
        using var db = device.Upload(ElementTypes.FromFloat<T>(b), n);
        using var dy = device.Allocate<T>(m, n);
        Poison.Fill(dy);
        StreamMatmulPath path;
        using (var rec = LowRankWorkspace.Record())
        {
            path = LowRankProduct.StreamMatmul<T>(dx, dv, ds, du, withBias ? db.ReadOnlySpan : default, dy);
            device.Synchronize();
            // Never an M×N buffer: the one-pass path asks for nothing, the two-stage path for the 16-bit M×r intermediate only.
            Assert.All(rec.Requests, q => Assert.True(q.Floats <= ((long)m * r + 1) / 2, $"{q.Purpose} requested {q.Floats} floats"));
            long requested = rec.Requests.Sum(q => q.Floats);
            Assert.Equal(expected == StreamMatmulPath.OnePass ? 0 : ((long)m * r + 1) / 2, requested);
            Assert.Equal(LowRankProduct.WorkspaceElements(m, r), expected == StreamMatmulPath.OnePass ? 0 : (long)m * r);
        }
        Assert.Equal(expected, path);
        var got = Compare.ToFloat<T>(dy.ToArray());
        Poison.AssertAllWritten<float>(got, "y", seed);
        var reference = LowRankReference.StreamMatmul(x, v, s, u, withBias ? b : [], m, k, n, r);
        Compare.Close(got, reference, Compare.BoundFor(ElementTypes.Of<T>()), $"y ({ElementTypes.Name<T>()} M={m} K={k} N={n} r={r} {path})", seed);
    }

    // The one-pass kernel multiplies on tensor cores, so it runs on the 32-lane CPU device (the mma emulation): tiny shapes.
    [Theory]
    [InlineData(1, 8, 1, 1, true)]        // one token, one output, rank 1 (padded to one k16 step)
    [InlineData(37, 45, 29, 8, false)]    // nothing a multiple of 16: scalar x copies, partial tiles everywhere
    [InlineData(70, 64, 72, 16, true)]    // 16-byte copies, two row blocks
    [InlineData(19, 33, 130, 64, true)]   // two 128-column sweeps of U, one full T tile
    [InlineData(20, 24, 130, 128, false)] // the largest on-chip rank: both T tiles, both rank warps
    public void OnePassF16MatchesF64(int m, int k, int n, int r, bool bias) =>
        Check<DeviceHalf>(Devices.CpuWarp32, m, k, n, r, bias, StreamMatmulPath.OnePass);

    [Theory]
    [InlineData(33, 40, 48, 24, true)]
    [InlineData(17, 21, 35, 128, true)]
    [InlineData(5, 70, 9, 1, false)]
    public void OnePassBF16MatchesF64(int m, int k, int n, int r, bool bias) =>
        Check<BFloat16>(Devices.CpuWarp32, m, k, n, r, bias, StreamMatmulPath.OnePass);

    [Fact]
    public void NeedsThirtyTwoLaneWarpsOnTheCpu()
    {
        var device = Devices.CpuSmall;
        using var x = device.Allocate<DeviceHalf>(2, 8);
        using var v = device.Allocate<DeviceHalf>(8, 4);
        using var s = device.Allocate<float>(4);
        using var u = device.Allocate<DeviceHalf>(3, 4);
        using var y = device.Allocate<DeviceHalf>(2, 3);
        Assert.Throws<NotSupportedException>(() => LowRankProduct.StreamMatmul<DeviceHalf>(x, v, s, u, default, y));
    }

    [Fact]
    public void TwoStageAboveRank128RunsOnTheTileEngine() =>
        Check<DeviceHalf>(Devices.CpuWarp32, 24, 40, 20, 136, true, StreamMatmulPath.TwoStage);

    [Fact]
    public void BadShapesThrowAndWriteNothing()
    {
        var device = Devices.CpuSmall;
        var seed = Seeded.Create();
        using var x = device.Upload(ElementTypes.FromFloat<DeviceHalf>(seed.Normal(10 * 12)), 10, 12);
        using var v = device.Upload(ElementTypes.FromFloat<DeviceHalf>(seed.Normal(12 * 4)), 12, 4);
        using var s = device.Upload<float>(seed.Normal(4), 4);
        using var u = device.Upload(ElementTypes.FromFloat<DeviceHalf>(seed.Normal(9 * 4)), 9, 4);
        using var y = device.Upload(ElementTypes.FromFloat<DeviceHalf>(seed.Normal(10 * 9)), 10, 9);
        var before = y.ToArray();
        using var vBad = device.Allocate<DeviceHalf>(11, 4);
        using var s3 = device.Allocate<float>(3);
        using var uBad = device.Allocate<DeviceHalf>(9, 5);
        using var bias8 = device.Allocate<DeviceHalf>(8);
        using var yBad = device.Allocate<DeviceHalf>(10, 8);
        Assert.Throws<ArgumentException>(() => LowRankProduct.StreamMatmul<DeviceHalf>(x, vBad, s, u, default, y));
        Assert.Throws<ArgumentException>(() => LowRankProduct.StreamMatmul<DeviceHalf>(x, v, s3, u, default, y));
        Assert.Throws<ArgumentException>(() => LowRankProduct.StreamMatmul<DeviceHalf>(x, v, s, uBad, default, y));
        Assert.Throws<ArgumentException>(() => LowRankProduct.StreamMatmul<DeviceHalf>(x, v, s, u, bias8, y));
        Assert.Throws<ArgumentException>(() => LowRankProduct.StreamMatmul<DeviceHalf>(x, v, s, u, default, yBad));
        Assert.Throws<NotSupportedException>(() => LowRankProduct.StreamMatmul<float>(default, default, s, default, default, default));
        Poison.AssertUnchanged(y, before, "y");
    }

    // f16 for sm_80 and bf16 for sm_90: both mma kinds and both architectures, two compilations (each takes seconds).
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void OnePassPtxUsesTensorCores(bool bf16)
    {
        var method = bf16
            ? Ptx.Method(typeof(StreamMatmulKernel), nameof(StreamMatmulKernel.Kernel), typeof(BFloat16), typeof(BF16Word), typeof(BF16Mma), typeof(BF16))
            : Ptx.Method(typeof(StreamMatmulKernel), nameof(StreamMatmulKernel.Kernel), typeof(DeviceHalf), typeof(F16Word), typeof(F16Mma), typeof(F16));
        var ptx = Ptx.Compile(method, bf16 ? CudaArchitecture.SM_90 : CudaArchitecture.SM_80);
        Assert.Contains(bf16 ? "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32" : "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32", ptx);
        Assert.Contains("ldmatrix.sync.aligned.m8n8.x4.shared.b16", ptx);
        Assert.Contains("cp.async.cg.shared.global", ptx); // x and U tiles arrive by 16-byte cp.async
        // No local memory in the PTX a device loads: not the 64×32 warp tile or T, not the inline-asm operands.
        Assert.DoesNotContain(".local", ptx);
    }

    [Fact]
    public void TwoStagePtxUsesTensorCores()
    {
        var method = typeof(TileEngine).GetMethod(nameof(TileEngine.Kernel))!.MakeGenericMethod(
            typeof(WideTile), typeof(F16Mma), typeof(FactorTransposeProducer), typeof(ScaledRankEpilogue<DeviceHalf, F16Word, RankMajorRows>));
        var ptx = Ptx.Compile(method, CudaArchitecture.SM_80);
        // The second stage is the engine: U's rows by cp.async, fragments by ldmatrix, mma.sync, no local memory.
        Assert.Contains("mma.sync.aligned.m16n8k16", ptx);
        Assert.Contains("ldmatrix.sync.aligned", ptx);
        Assert.Contains("cp.async.cg.shared.global", ptx);
        Assert.DoesNotContain(".local", ptx);
    }
}
