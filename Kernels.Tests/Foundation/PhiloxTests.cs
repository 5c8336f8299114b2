using ILGPU;
using ILGPU.Runtime;
using Kernels.Runtime;
using Kernels.Tests.Harness;
using Xunit;

namespace Kernels.Tests.Foundation;

public class PhiloxTests
{
    // Known-answer vectors of Philox4x32-10 from the Random123 distribution (kat_vectors).
    [Theory]
    [InlineData(0u, 0u, 0u, 0u, 0u, 0u, 0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u)]
    [InlineData(0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu)]
    [InlineData(0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u, 0xa4093822u, 0x299f31d0u, 0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u)]
    public void MatchesKnownAnswers(uint c0, uint c1, uint c2, uint c3, uint k0, uint k1, uint r0, uint r1, uint r2, uint r3)
    {
        var r = Philox.Generate(c0, c1, c2, c3, k0, k1);
        Assert.Equal([r0, r1, r2, r3], new[] { r.X, r.Y, r.Z, r.W });
    }

    private static void UniformKernel(Index1D i, ArrayView<float> output, ulong seed, ulong offset) =>
        output[i] = Philox.Uniform(seed, offset, (ulong)i.X);

    [Fact]
    public void KernelMatchesHost()
    {
        var seed = Seeded.Create();
        ulong key = (ulong)seed.Random.NextInt64();
        var device = Devices.CpuSmall;
        using var output = device.Allocate<float>(1000);
        var kernel = device.Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ulong, ulong>(UniformKernel);
        kernel(1000, output.Span.View.AsContiguous(), key, 7);
        var got = output.ToArray();
        for (int i = 0; i < got.Length; i++)
            Assert.True(got[i] == Philox.Uniform(key, 7, (ulong)i), $"element {i} {seed.Tag}");
        Assert.All(got, v => Assert.InRange(v, 0f, 0.99999995f));
        Assert.InRange(got.Average(), 0.45, 0.55);
    }
}
