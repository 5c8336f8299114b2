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
    public void AwkwardShapeBF16() => Check<BFloat16>(Devices.CpuWarp32, 129, 72, 3, withBias: false);
}
