using Kernels.Dense;
using Kernels.Runtime;
using Kernels.Tensors;
using Kernels.Tests.Harness;
using Xunit;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Tests.Dense;

public class GemvTests
{
    internal static void Check<T>(ComputeDevice device, int m, int k, bool withBias, bool forceScalar = false) where T : unmanaged
    {
        var seed = Seeded.Create();
        var wh = ElementTypes.FromFloat<T>(seed.Normal((long)m * k, 0.5f));
        var xh = ElementTypes.FromFloat<T>(seed.Normal(k));
        var bh = ElementTypes.FromFloat<T>(seed.Normal(m));
        using var w = device.Upload<T>(wh, m, k);
        using var x = device.Upload<T>(xh, k);
        using var bias = device.Upload<T>(bh, m);
        using var y = device.Allocate<T>(m);
        Poison.Fill(y);
        Kernels.Dense.Dense.Gemv<T>(w, x, withBias ? bias.ReadOnlySpan : null, y, forceScalar);
        var got = y.ToArray();
        string what = $"Gemv {ElementTypes.Name<T>()} M={m} K={k} bias={withBias} scalar={forceScalar}";
        Poison.AssertAllWritten<T>(got, what, seed);
        var expected = DenseReference.GemvExact<T>(wh, xh, withBias ? bh : ReadOnlySpan<T>.Empty, m, k);
        Compare.Close(Compare.ToFloat<T>(got), expected, Compare.BoundFor(ElementTypes.Of<T>()), what, seed);
    }

    [Fact]
    public void AlignedRowsF16WithBias() => Check<DeviceHalf>(Devices.CpuWarp32, 37, 264, withBias: true);

    [Fact]
    public void AlignedRowsBF16() => Check<BFloat16>(Devices.CpuWarp32, 21, 136, withBias: false);

    [Fact]
    public void KNotAMultipleOfEight() => Check<DeviceHalf>(Devices.CpuWarp32, 19, 45, withBias: true);

    [Fact]
    public void OneByOne() => Check<BFloat16>(Devices.CpuWarp32, 1, 1, withBias: true);

    [Fact]
    public void ForcedScalarPathMatches() => Check<DeviceHalf>(Devices.CpuWarp32, 9, 64, withBias: false, forceScalar: true);

    [Fact]
    public void PublicOverloadWithoutBias()
    {
        var device = Devices.CpuWarp32;
        var seed = Seeded.Create();
        var wh = ElementTypes.FromFloat<DeviceHalf>(seed.Normal(6 * 16));
        var xh = ElementTypes.FromFloat<DeviceHalf>(seed.Normal(16));
        using var w = device.Upload<DeviceHalf>(wh, 6, 16);
        using var x = device.Upload<DeviceHalf>(xh, 16);
        using var y = device.Allocate<DeviceHalf>(6);
        Poison.Fill(y);
        Kernels.Dense.Dense.Gemv<DeviceHalf>(w, x, y);
        Compare.Close(Compare.ToFloat<DeviceHalf>(y.ToArray()), DenseReference.GemvExact<DeviceHalf>(wh, xh, default, 6, 16),
            Compare.F16, "Gemv(w, x, y)", seed);
    }

    [Fact]
    public void BadInputIsRejectedBeforeLaunch()
    {
        var device = Devices.CpuWarp32;
        using var w = device.Allocate<DeviceHalf>(5, 8);
        using var x = device.Allocate<DeviceHalf>(8);
        using var xBad = device.Allocate<DeviceHalf>(7);
        using var x2d = device.Allocate<DeviceHalf>(1, 8);
        using var biasBad = device.Allocate<DeviceHalf>(6);
        using var y = device.Allocate<DeviceHalf>(5);
        using var yBad = device.Allocate<DeviceHalf>(4);
        using var wf = device.Allocate<float>(5, 8);
        using var xf = device.Allocate<float>(8);
        using var yf = device.Allocate<float>(5);
        using var xOther = Devices.CpuSmall.Allocate<DeviceHalf>(8);
        Poison.Fill(y, (DeviceHalf)7f);
        var before = y.ToArray();
        Assert.Equal("x", Assert.Throws<ArgumentException>(() => Kernels.Dense.Dense.Gemv<DeviceHalf>(w, xBad, y)).ParamName);
        Assert.Equal("x", Assert.Throws<ArgumentException>(() => Kernels.Dense.Dense.Gemv<DeviceHalf>(w, x2d, y)).ParamName);
        Assert.Equal("y", Assert.Throws<ArgumentException>(() => Kernels.Dense.Dense.Gemv<DeviceHalf>(w, x, yBad)).ParamName);
        Assert.Equal("bias", Assert.Throws<ArgumentException>(() => Kernels.Dense.Dense.Gemv<DeviceHalf>(w, x, biasBad.ReadOnlySpan, y)).ParamName);
        Assert.Equal("w", Assert.Throws<ArgumentException>(() => Kernels.Dense.Dense.Gemv<float>(wf, xf, yf)).ParamName);
        Assert.Equal("x", Assert.Throws<ArgumentException>(() => Kernels.Dense.Dense.Gemv<DeviceHalf>(w, xOther, y)).ParamName);
        Poison.AssertUnchanged(y, before, "Gemv destination");
    }
}
