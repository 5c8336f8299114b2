using Kernels.Tensors;
using Kernels.Tests.Harness;
using Xunit;

namespace Kernels.Tests.Foundation;

/// <summary>The integer fp16 rounding the CPU paths use must equal IEEE round-to-nearest-even (System.Half's conversion).</summary>
public class Fp16Tests
{
    [Fact]
    public void RoundsLikeIeeeAroundEveryHalfValue()
    {
        for (int bits = 0; bits < 0x10000; bits++)
        {
            var h = BitConverter.UInt16BitsToHalf((ushort)bits);
            if (Half.IsNaN(h)) continue;
            float f = (float)h;
            Assert.Equal((ushort)bits, Fp16.FromFloat(f));
            Assert.Equal(BitConverter.SingleToUInt32Bits(f), BitConverter.SingleToUInt32Bits(Fp16.ToFloat((ushort)bits)));
            uint fb = BitConverter.SingleToUInt32Bits(f);
            // neighbours in f32 land on both sides of midpoints, midpoints themselves included
            foreach (int delta in new[] { -4097, -4096, -4095, -1, 1, 4095, 4096, 4097 })
            {
                float g = BitConverter.UInt32BitsToSingle((uint)(fb + delta));
                if (float.IsNaN(g)) continue;
                Assert.True(BitConverter.HalfToUInt16Bits((Half)g) == Fp16.FromFloat(g), $"{g:R} (0x{fb + delta:X8})");
            }
        }
    }

    [Fact]
    public void RoundsRandomFloatsLikeIeee()
    {
        var seed = Seeded.Create();
        for (int i = 0; i < 200_000; i++)
        {
            float g = BitConverter.UInt32BitsToSingle((uint)seed.Random.NextInt64(0, 1L << 32));
            if (float.IsNaN(g)) continue;
            Assert.True(BitConverter.HalfToUInt16Bits((Half)g) == Fp16.FromFloat(g), $"{g:R} {seed.Tag}");
        }
        Assert.True(float.IsNaN(Fp16.ToFloat(Fp16.FromFloat(float.NaN))));
    }
}
