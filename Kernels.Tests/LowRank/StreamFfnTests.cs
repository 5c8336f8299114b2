using ILGPU.Runtime.Cuda;
using Kernels.LowRank;
using Kernels.Runtime;
using Kernels.Tensors;
using Kernels.Tests.Harness;
using Xunit;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Tests.LowRank;

public class StreamFfnTests
{
    private static void Check<T>(ComputeDevice device, int m, int r1, int d, int r2, int h, FfnActivation act, bool bias2) where T : unmanaged
    {
        var seed = Seeded.Create();
        float[] Round(float[] a) => Compare.ToFloat<T>(ElementTypes.FromFloat<T>(a));
        var x = Round(seed.Normal((long)m * r1));
        var v1 = Round(seed.Normal((long)r1 * d, 1f / MathF.Sqrt(r1)));
        var b1 = Round(seed.Normal(d, 0.2f));
        var u2 = Round(seed.Normal((long)d * r2, 1f / MathF.Sqrt(d)));
        var v2 = Round(seed.Normal((long)r2 * h, 1f / MathF.Sqrt(r2)));
        var b2 = Round(seed.Normal(h, 0.1f));
        using var dx = device.Upload(ElementTypes.FromFloat<T>(x), m, r1);
        using var dv1 = device.Upload(ElementTypes.FromFloat<T>(v1), r1, d);
        using var db1 = device.Upload(ElementTypes.FromFloat<T>(b1), d);
        using var du2 = device.Upload(ElementTypes.FromFloat<T>(u2), d, r2);
        using var dv2 = device.Upload(ElementTypes.FromFloat<T>(v2), r2, h);
        using var db2 = device.Upload(ElementTypes.FromFloat<T>(b2), h);
        using var dy = device.Allocate<T>(m, h);
        Poison.Fill(dy);
        using (var rec = LowRankWorkspace.Record())
        {
            LowRankProduct.StreamFfn<T>(dx, dv1, db1, du2, dv2, bias2 ? db2.ReadOnlySpan : default, act, dy);
            Assert.Empty(rec.Requests); // neither the M×D hidden nor the M×R2 rank-space result goes to device memory
        }
        var got = Compare.ToFloat<T>(dy.ToArray());
        Poison.AssertAllWritten<float>(got, "y", seed);
        var reference = LowRankReference.StreamFfn(x, v1, b1, u2, v2, bias2 ? b2 : [], act, m, r1, d, r2, h);
        Compare.Close(got, reference, Compare.BoundFor(ElementTypes.Of<T>()), $"y ({act} M={m} R1={r1} D={d} R2={r2} H={h})", seed);
    }

    [Theory]
    [InlineData(19, 13, 70, 11, 37, FfnActivation.Gelu, true)]   // nothing aligned, D spans several chunks
    [InlineData(32, 16, 96, 16, 48, FfnActivation.Silu, false)]  // vector paths
    [InlineData(1, 1, 1, 1, 1, FfnActivation.Gelu, false)]
    public void F16MatchesF64(int m, int r1, int d, int r2, int h, FfnActivation act, bool bias2) =>
        Check<DeviceHalf>(Devices.CpuSmall, m, r1, d, r2, h, act, bias2);

    [Fact]
    public void RankAbove128AndBadShapesAreRejected()
    {
        var device = Devices.CpuSmall;
        using var x = device.Allocate<DeviceHalf>(4, 8);
        using var v1 = device.Allocate<DeviceHalf>(8, 16);
        using var b1 = device.Allocate<DeviceHalf>(16);
        using var u2Big = device.Allocate<DeviceHalf>(16, 129);
        using var v2Big = device.Allocate<DeviceHalf>(129, 8);
        using var u2 = device.Allocate<DeviceHalf>(16, 4);
        using var v2 = device.Allocate<DeviceHalf>(4, 8);
        using var v2Bad = device.Allocate<DeviceHalf>(5, 8);
        using var y = device.Upload(ElementTypes.FromFloat<DeviceHalf>(new float[32]), 4, 8);
        var before = y.ToArray();
        Assert.Throws<ArgumentOutOfRangeException>(() => LowRankProduct.StreamFfn<DeviceHalf>(x, v1, b1, u2Big, v2Big, default, FfnActivation.Gelu, y));
        Assert.Throws<ArgumentException>(() => LowRankProduct.StreamFfn<DeviceHalf>(x, v1, b1, u2, v2Bad, default, FfnActivation.Gelu, y));
        Assert.Throws<ArgumentException>(() => LowRankProduct.StreamFfn<DeviceHalf>(x, v1, v1.ReadOnlySpan.Reshape(128), u2, v2, default, FfnActivation.Silu, y));
        Poison.AssertUnchanged(y, before, "y");
    }

    [Fact]
    public void PtxHasVectorLoadsAndNoLocalMemory()
    {
        var method = Ptx.Method(typeof(StreamFfnKernel), nameof(StreamFfnKernel.Kernel), typeof(DeviceHalf), typeof(F16Word), typeof(Silu));
        var ptx = Ptx.Compile(method, CudaArchitecture.SM_80);
        Assert.Contains("ld.global.v4.b32", ptx);
        Assert.DoesNotContain(".local", ptx);
    }
}
