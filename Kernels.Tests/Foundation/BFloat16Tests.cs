using Kernels.Tensors;
using Xunit;

namespace Kernels.Tests.Foundation;

public class BFloat16Tests
{
    [Theory]
    [InlineData(1.0f, (ushort)0x3F80)]
    [InlineData(-2.0f, (ushort)0xC000)]
    [InlineData(0.0f, (ushort)0x0000)]
    [InlineData(-0.0f, (ushort)0x8000)]
    [InlineData(float.PositiveInfinity, (ushort)0x7F80)]
    [InlineData(float.NegativeInfinity, (ushort)0xFF80)]
    [InlineData(3.3895314e38f, (ushort)0x7F7F)] // largest finite bf16
    public void KnownValues(float value, ushort bits) => Assert.Equal(bits, BFloat16.FromFloat(value).Bits);

    [Fact]
    public void RoundsToNearestEven()
    {
        // 1 + 2^-8 lies exactly between bf16 1.0 (0x3F80) and 1.0078125 (0x3F81): ties go to the even mantissa.
        Assert.Equal((ushort)0x3F80, BFloat16.FromFloat(BitConverter.UInt32BitsToSingle(0x3F808000)).Bits);
        // 1.0078125 + 2^-8 is between 0x3F81 and 0x3F82: tie to even goes up to 0x3F82.
        Assert.Equal((ushort)0x3F82, BFloat16.FromFloat(BitConverter.UInt32BitsToSingle(0x3F818000)).Bits);
        // Just above the midpoint rounds up, just below rounds down.
        Assert.Equal((ushort)0x3F81, BFloat16.FromFloat(BitConverter.UInt32BitsToSingle(0x3F808001)).Bits);
        Assert.Equal((ushort)0x3F80, BFloat16.FromFloat(BitConverter.UInt32BitsToSingle(0x3F807FFF)).Bits);
        // Rounding overflow of the largest finite value goes to infinity, as IEEE requires.
        Assert.Equal((ushort)0x7F80, BFloat16.FromFloat(BitConverter.UInt32BitsToSingle(0x7F7FC000)).Bits);
    }

    [Fact]
    public void NaNStaysNaN()
    {
        Assert.True(BFloat16.FromFloat(float.NaN).IsNaN);
        // A NaN whose payload lives only in the low 16 bits must not truncate to infinity.
        Assert.True(BFloat16.FromFloat(BitConverter.UInt32BitsToSingle(0x7F800001)).IsNaN);
        Assert.True(float.IsNaN(BFloat16.FromFloat(float.NaN).ToFloat()));
    }

    [Fact]
    public void WideningIsExactForEveryPattern()
    {
        for (int b = 0; b < 65536; b++)
        {
            var v = BFloat16.FromBits((ushort)b);
            float f = v.ToFloat();
            Assert.Equal((uint)b << 16, BitConverter.SingleToUInt32Bits(f));
            if (!v.IsNaN) Assert.Equal((ushort)b, BFloat16.FromFloat(f).Bits);
        }
    }
}
