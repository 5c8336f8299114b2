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

    [Theory]
    [InlineData(37, 45, 29, 7, false)]   // nothing a multiple of anything: scalar paths
    [InlineData(70, 64, 72, 16, true)]   // vector paths, several row blocks and column tiles
    [InlineData(1, 8, 1, 1, true)]       // one token, one output
    [InlineData(20, 24, 130, 128, false)] // the largest on-chip rank
    public void OnePassF16MatchesF64(int m, int k, int n, int r, bool bias) =>
        Check<DeviceHalf>(Devices.CpuSmall, m, k, n, r, bias, StreamMatmulPath.OnePass);

    [Fact]
    public void OnePassBF16MatchesF64() => Check<BFloat16>(Devices.CpuSmall, 33, 40, 48, 24, true, StreamMatmulPath.OnePass);

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

    [Fact]
    public void OnePassPtxHasVectorLoadsAndKeepsTheTileInRegisters()
    {
        var method = Ptx.Method(typeof(StreamMatmulKernel), nameof(StreamMatmulKernel.Kernel), typeof(DeviceHalf), typeof(F16Word));
        var ptx = Ptx.Compile(method, CudaArchitecture.SM_80);
        Assert.Contains("ld.global.v4.b32", ptx);  // 8 halves of x, V, U per load
        Assert.Contains("st.global.b64", ptx);     // 4 outputs of y per store
        Assert.Contains("ld.shared.v4.f32", ptx);
        Assert.DoesNotContain(".local", ptx);
    }

    [Fact]
    public void TwoStagePtxUsesTensorCores()
    {
        var method = typeof(TileEngine).GetMethod(nameof(TileEngine.Kernel))!.MakeGenericMethod(
            typeof(WideTile), typeof(F16Mma), typeof(FactorTransposeProducer), typeof(ScaledRankEpilogue<DeviceHalf, F16Word>));
        var ptx = Ptx.Compile(method, CudaArchitecture.SM_80);
        Assert.Contains("mma.sync.aligned.m16n8k16", ptx);
    }
}
