using Kernels.Dense;
using Kernels.Runtime;
using Kernels.Tensors;
using Kernels.Tests.Harness;
using Xunit;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Tests.Dense;

public class GemmTests
{
    internal static (T[] X, T[] W, T[] Bias) Inputs<T>(Seeded seed, int n, int k, int m) where T : unmanaged =>
        (ElementTypes.FromFloat<T>(seed.Normal((long)n * k)),
         ElementTypes.FromFloat<T>(seed.Normal((long)m * k, 0.5f)),
         ElementTypes.FromFloat<T>(seed.Normal(m)));

    internal static void Check<T>(ComputeDevice device, int m, int k, int n, bool withBias,
        Kernels.Dense.Dense.GemmTuning tuning = default) where T : unmanaged
    {
        var seed = Seeded.Create();
        var (xh, wh, bh) = Inputs<T>(seed, n, k, m);
        using var x = device.Upload<T>(xh, n, k);
        using var w = device.Upload<T>(wh, m, k);
        using var bias = device.Upload<T>(bh, m);
        using var y = device.Allocate<T>(n, m);
        Poison.Fill(y);
        Kernels.Dense.Dense.Gemm<T>(x, w, withBias ? bias.ReadOnlySpan : null, y, tuning);
        var got = y.ToArray();
        string what = $"Gemm {ElementTypes.Name<T>()} M={m} K={k} N={n} bias={withBias} {tuning}";
        Poison.AssertAllWritten<T>(got, what, seed);
        var expected = DenseReference.GemmExact<T>(xh, wh, withBias ? bh : ReadOnlySpan<T>.Empty, n, k, m);
        Compare.Close(Compare.ToFloat<T>(got), expected, Compare.BoundFor(ElementTypes.Of<T>()), what, seed);
    }

    [Fact]
    public void AwkwardShapeF16WithBias() => Check<DeviceHalf>(Devices.CpuWarp32, 129, 72, 3, withBias: true);

    [Fact]
    public void AwkwardShapeBF16WithBias() => Check<BFloat16>(Devices.CpuWarp32, 129, 72, 3, withBias: true);

    [Fact]
    public void SingleRowSingleToken() => Check<DeviceHalf>(Devices.CpuWarp32, 1, 16, 1, withBias: true);

    [Fact]
    public void KNotAMultipleOfEightTakesScalarLoads() => Check<DeviceHalf>(Devices.CpuWarp32, 33, 20, 5, withBias: false);

    [Fact]
    public void KNotAMultipleOfSixteenBF16() => Check<BFloat16>(Devices.CpuWarp32, 17, 40, 2, withBias: true);

    [Fact]
    public void WideShapeOverTwoTokenTiles() =>
        Check<DeviceHalf>(Devices.CpuWarp32, 24, 32, 40, withBias: true, new Kernels.Dense.Dense.GemmTuning(Shape: Kernels.Dense.Dense.GemmShape.Wide));

    [Fact]
    public void ManyTokensUseTheLargeShape() => Check<BFloat16>(Devices.CpuWarp32, 20, 24, 40, withBias: true);

    [Fact]
    public void SkinnyShapeOverSeveralTokenTiles() =>
        Check<BFloat16>(Devices.CpuWarp32, 20, 24, 19, withBias: false, new Kernels.Dense.Dense.GemmTuning(Shape: Kernels.Dense.Dense.GemmShape.Skinny));

    [Fact]
    public void SplitKSumsPartialsDeterministically()
    {
        Check<DeviceHalf>(Devices.CpuWarp32, 40, 200, 2, withBias: true, new Kernels.Dense.Dense.GemmTuning(Splits: 4));
    }

    [Fact]
    public void SplitKIsBitwiseRepeatable()
    {
        var device = Devices.CpuWarp32;
        var seed = Seeded.Create();
        var (xh, wh, _) = Inputs<DeviceHalf>(seed, 2, 192, 8);
        using var x = device.Upload<DeviceHalf>(xh, 2, 192);
        using var w = device.Upload<DeviceHalf>(wh, 8, 192);
        using var y = device.Allocate<DeviceHalf>(2, 8);
        var tuning = new Kernels.Dense.Dense.GemmTuning(Splits: 3);
        Kernels.Dense.Dense.Gemm<DeviceHalf>(x, w, null, y, tuning);
        var first = y.ToArray();
        Poison.Fill(y);
        Kernels.Dense.Dense.Gemm<DeviceHalf>(x, w, null, y, tuning);
        Compare.Exact<DeviceHalf>(y.ToArray(), first, "split-K repeat", seed);
    }

    [Fact]
    public void ForcedScalarLoadsMatchTheCpAsyncPath() =>
        Check<DeviceHalf>(Devices.CpuWarp32, 16, 64, 4, withBias: true, new Kernels.Dense.Dense.GemmTuning(ForceScalarLoads: true));

    [Fact]
    public void BadInputIsRejectedBeforeLaunch()
    {
        var device = Devices.CpuWarp32;
        using var x = device.Allocate<DeviceHalf>(3, 8);
        using var w = device.Allocate<DeviceHalf>(5, 8);
        using var wBadK = device.Allocate<DeviceHalf>(5, 7);
        using var bias = device.Allocate<DeviceHalf>(5);
        using var biasBad = device.Allocate<DeviceHalf>(4);
        using var y = device.Allocate<DeviceHalf>(3, 5);
        using var yBad = device.Allocate<DeviceHalf>(5, 3);
        using var wide = device.Allocate<DeviceHalf>(3, 16);
        using var xf = device.Allocate<float>(3, 8);
        using var wf = device.Allocate<float>(5, 8);
        using var yf = device.Allocate<float>(3, 5);
        using var xEmpty = device.Allocate<DeviceHalf>(3, 0);
        using var wEmpty = device.Allocate<DeviceHalf>(5, 0);
        using var other = Devices.CpuSmall.Allocate<DeviceHalf>(5, 8);
        Poison.Fill(y, (DeviceHalf)7f); // a sentinel: NaN never equals itself
        var before = y.ToArray();

        Assert.Contains("w", Assert.Throws<ArgumentException>(() => Kernels.Dense.Dense.Gemm<DeviceHalf>(x, wBadK, null, y)).ParamName);
        Assert.Equal("y", Assert.Throws<ArgumentException>(() => Kernels.Dense.Dense.Gemm<DeviceHalf>(x, w, null, yBad)).ParamName);
        Assert.Equal("bias", Assert.Throws<ArgumentException>(() => Kernels.Dense.Dense.Gemm<DeviceHalf>(x, w, biasBad.ReadOnlySpan, y)).ParamName);
        var strided = wide.ReadOnlySpan.Slice(.., 0..8); // 3×8 view with row stride 16
        Assert.Equal("x", Assert.Throws<ArgumentException>(() => Kernels.Dense.Dense.Gemm<DeviceHalf>(strided, w, null, y)).ParamName);
        Assert.Equal("x", Assert.Throws<ArgumentException>(() => Kernels.Dense.Dense.Gemm<float>(xf, wf, null, yf)).ParamName);
        Assert.Equal("x", Assert.Throws<ArgumentException>(() => Kernels.Dense.Dense.Gemm<DeviceHalf>(xEmpty, wEmpty, null, y)).ParamName);
        Assert.Equal("w", Assert.Throws<ArgumentException>(() => Kernels.Dense.Dense.Gemm<DeviceHalf>(x, other, null, y)).ParamName);
        Assert.Equal("x", Assert.Throws<ArgumentException>(() => Kernels.Dense.Dense.Gemm<DeviceHalf>(x.ReadOnlySpan.Reshape(24), w, null, y)).ParamName);
        Poison.AssertUnchanged(y, before, "Gemm destination");
        _ = bias;
    }
}

/// <summary>GEMM and GEMV on a GPU against the same references; skipped without CUDA.</summary>
public class DenseGpuTests
{
    [Fact]
    public void GemmMatchesReferenceOnGpu()
    {
        var gpu = Devices.RequireCuda();
        GemmTests.Check<DeviceHalf>(gpu, 129, 72, 3, withBias: true);
        GemmTests.Check<BFloat16>(gpu, 129, 72, 3, withBias: true);
        GemmTests.Check<DeviceHalf>(gpu, 33, 20, 5, withBias: false);
        GemmTests.Check<DeviceHalf>(gpu, 300, 520, 77, withBias: true);
        GemmTests.Check<DeviceHalf>(gpu, 300, 520, 28, withBias: true);
        GemmTests.Check<BFloat16>(gpu, 1000, 264, 300, withBias: true);
        GemmTests.Check<BFloat16>(gpu, 257, 1000, 16, withBias: false, new Kernels.Dense.Dense.GemmTuning(Splits: 5));
        GemmTests.Check<DeviceHalf>(gpu, 512, 4096, 8, withBias: true); // automatic split-K
    }

    [Fact]
    public void GemvMatchesReferenceOnGpu()
    {
        var gpu = Devices.RequireCuda();
        GemvTests.Check<DeviceHalf>(gpu, 1000, 4096, withBias: true);
        GemvTests.Check<BFloat16>(gpu, 257, 1032, withBias: false);
        GemvTests.Check<DeviceHalf>(gpu, 129, 45, withBias: true);
    }

    [Fact]
    public void KernelsLoadWithoutSpillsOnGpu()
    {
        var gpu = Devices.RequireCuda();
        GemmTests.Check<DeviceHalf>(gpu, 64, 64, 16, withBias: false);
        var resources = Kernels.Dense.DenseKernelInfo.GemmResources(gpu, Kernels.Dense.Dense.GemmShape.Skinny, bf16: false);
        Assert.NotNull(resources);
        Assert.True(resources!.Registers > 0, $"registers {resources.Registers}, local bytes {resources.LocalBytes}");
    }
}
