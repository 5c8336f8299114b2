using ILGPU;
using ILGPU.Runtime.Cuda;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Tensors;

/// <summary>
/// fp16 conversions that give the GPU's bits on every device. ILGPU 1.5.3's software <see cref="DeviceHalf"/>
/// (the host and the CPU accelerator) truncates when narrowing (2051 → 2050, 65520 → 65504) where the GPU's
/// <c>cvt.rn.f16.f32</c> rounds to nearest even, so every f16 store in the library narrows through
/// <see cref="Narrow"/>: the hardware conversion on CUDA, integer round-to-nearest-even elsewhere. References use the
/// same functions, so CPU-accelerator results equal GPU results bit for bit.
/// </summary>
internal static class Fp16
{
    /// <summary>Rounds an f32 value to the nearest fp16 (ties to even) and widens it back; exact on every device.</summary>
    public static float Round(float value) =>
        CudaAsm.IsSupported ? (float)(DeviceHalf)value : ToFloat(FromFloat(value));

    /// <summary>Rounds f32 to the nearest device half (ties to even) on every device.</summary>
    public static DeviceHalf Narrow(float value) => CudaAsm.IsSupported ? (DeviceHalf)value : AsHalf(FromFloat(value));

    /// <summary>Rounds f32 to the nearest fp16 bit pattern (ties to even) on every device.</summary>
    public static uint NarrowBits(float value) => CudaAsm.IsSupported ? Bits((DeviceHalf)value) : FromFloat(value);

    /// <summary>Widens a device half to f32 (exact) on every device.</summary>
    public static float Widen(DeviceHalf value) => CudaAsm.IsSupported ? (float)value : ToFloat(Bits(value));

    /// <summary>The fp16 bits nearest to <paramref name="value"/> (ties to even; overflow to ±∞; NaN stays NaN).</summary>
    public static ushort FromFloat(float value)
    {
        uint x = Interop.FloatAsInt(value);
        uint sign = (x >> 16) & 0x8000u;
        uint abs = x & 0x7FFFFFFFu;
        if (abs >= 0x7F800000u) return (ushort)(sign | (abs > 0x7F800000u ? 0x7E00u : 0x7C00u));
        if (abs >= 0x477FF000u) return (ushort)(sign | 0x7C00u); // ≥ 65520 rounds to infinity
        if (abs < 0x38800000u) // below 2^-14: an fp16 subnormal (or zero)
        {
            int e = (int)(abs >> 23);
            if (e < 102) return (ushort)sign; // below 2^-25 (a half ulp of the smallest subnormal)
            uint mantissa = (abs & 0x7FFFFFu) | 0x800000u;
            int shift = 126 - e; // 14..24
            uint q = mantissa >> shift;
            uint rem = mantissa & ((1u << shift) - 1u);
            uint half = 1u << (shift - 1);
            if (rem > half || (rem == half && (q & 1u) != 0)) q++;
            return (ushort)(sign | q);
        }
        uint rebased = abs - 0x38000000u; // exponent bias 127 → 15
        uint r = rebased >> 13;
        uint low = rebased & 0x1FFFu;
        if (low > 0x1000u || (low == 0x1000u && (r & 1u) != 0)) r++; // a carry into the exponent is still correct
        return (ushort)(sign | r);
    }

    /// <summary>Widens fp16 bits to f32 (exact).</summary>
    public static float ToFloat(ushort bits)
    {
        uint sign = (uint)(bits & 0x8000) << 16;
        uint e = (uint)(bits >> 10) & 0x1Fu;
        uint m = bits & 0x3FFu;
        if (e == 0)
        {
            float sub = (int)m * 5.9604645E-08f; // m · 2^-24, exact (via int: ILGPU converts uint → float through f64)
            return sign != 0 ? -sub : sub;
        }
        if (e == 31) return Interop.IntAsFloat(sign | 0x7F800000u | (m << 13));
        return Interop.IntAsFloat(sign | ((e + 112u) << 23) | (m << 13));
    }

    /// <summary>The fp16 bits as a device half (no rounding).</summary>
    public static DeviceHalf AsHalf(ushort bits) => Interop.IntAsFloat(bits);

    /// <summary>The bits of a device half.</summary>
    public static ushort Bits(DeviceHalf value) => Interop.FloatAsInt(value);

    /// <summary>True when fp16 bits encode a finite value.</summary>
    public static bool IsFinite(ushort bits) => (bits & 0x7C00) != 0x7C00;
}
