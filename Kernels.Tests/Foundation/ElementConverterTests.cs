using ILGPU;
using ILGPU.Runtime;
using Kernels.Tensors;
using Kernels.Tests.Harness;
using Xunit;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Tests.Foundation;

public class ElementConverterTests
{
    private static void NarrowKernel(Index1D i, ArrayView<float> input, ArrayView<DeviceHalf> f16, ArrayView<BFloat16> bf16)
    {
        f16[i] = default(F16).FromFloat(input[i]);
        bf16[i] = default(BF16).FromFloat(input[i]);
    }

    [Fact]
    public void KernelNarrowingRoundsLikeTheBclAndTheGpu()
    {
        // The GPU's cvt.rn.f16.f32 rounds to nearest even, as System.Half does; the CPU accelerator must agree bit for
        // bit (ILGPU's own software half truncates), and so must the host conversion the references use.
        var seed = Seeded.Create();
        var x = seed.Normal(4096, 100f);
        x[0] = 2051f; x[1] = 65520f; x[2] = 1e-8f; x[3] = -0f; x[4] = float.NaN; x[5] = 70000f;
        var device = Devices.CpuSmall;
        using var input = device.Upload<float>(x);
        using var f16 = device.Allocate<DeviceHalf>(x.Length);
        using var bf16 = device.Allocate<BFloat16>(x.Length);
        var kernel = device.Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<DeviceHalf>, ArrayView<BFloat16>>(NarrowKernel);
        kernel(x.Length, input.Span.View.AsContiguous(), f16.Span.View.AsContiguous(), bf16.Span.View.AsContiguous());
        var halves = new System.Half[x.Length];
        f16.CopyTo(halves);
        var brains = bf16.ToArray();
        for (int i = 0; i < x.Length; i++)
        {
            var expected = (System.Half)x[i];
            if (float.IsNaN(x[i])) { Assert.True(System.Half.IsNaN(halves[i])); continue; }
            Assert.True(BitConverter.HalfToUInt16Bits(expected) == BitConverter.HalfToUInt16Bits(halves[i]),
                $"f16 of {x[i]:R}: got {halves[i]} expected {expected} {seed.Tag}");
            Assert.True(BitConverter.HalfToUInt16Bits(expected) == Fp16.Bits(ElementTypes.FromFloat<DeviceHalf>(x[i])), $"host f16 of {x[i]:R}");
            Assert.Equal(BFloat16.FromFloat(x[i]).Bits, brains[i].Bits);
            Assert.Equal((float)expected, ElementTypes.ToFloat(ElementTypes.FromFloat<DeviceHalf>(x[i])));
        }
    }
}
