using System.Runtime.InteropServices;
using ILGPU;

namespace Kernels.Tensors;

/// <summary>
/// Brain floating point: the upper 16 bits of an IEEE binary32 (1 sign, 8 exponent, 7 mantissa bits). ILGPU has no
/// bf16 type, so this struct is the library's own; it is usable inside kernels (bit operations only). Conversion from
/// float rounds to nearest, ties to even; NaN stays NaN (quiet), ±Inf stays ±Inf.
/// </summary>
[StructLayout(LayoutKind.Sequential, Size = 2)]
public readonly struct BFloat16 : IEquatable<BFloat16>
{
    /// <summary>The raw bit pattern.</summary>
    public readonly ushort Bits;

    /// <summary>Creates a value from its raw bit pattern.</summary>
    public BFloat16(ushort bits) => Bits = bits;

    /// <summary>Creates a value from raw bits.</summary>
    public static BFloat16 FromBits(ushort bits) => new(bits);

    /// <summary>Converts a float with round-to-nearest-even.</summary>
    public static BFloat16 FromFloat(float value)
    {
        uint u = (uint)Interop.FloatAsInt(value);
        if ((u & 0x7F800000u) == 0x7F800000u && (u & 0x007FFFFFu) != 0)
            return new BFloat16((ushort)((u >> 16) | 0x0040u)); // quiet NaN, keep sign and top payload
        uint rounding = 0x7FFFu + ((u >> 16) & 1u);
        return new BFloat16((ushort)((u + rounding) >> 16));
    }

    /// <summary>Converts to float exactly.</summary>
    public float ToFloat() => Interop.IntAsFloat((uint)Bits << 16);

    /// <summary>Converts a float with round-to-nearest-even.</summary>
    public static explicit operator BFloat16(float value) => FromFloat(value);

    /// <summary>Converts to float exactly.</summary>
    public static explicit operator float(BFloat16 value) => value.ToFloat();

    /// <summary>True when the value is NaN.</summary>
    public bool IsNaN => (Bits & 0x7F80) == 0x7F80 && (Bits & 0x007F) != 0;

    /// <inheritdoc />
    public bool Equals(BFloat16 other) => Bits == other.Bits;

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is BFloat16 b && Equals(b);

    /// <inheritdoc />
    public override int GetHashCode() => Bits;

    /// <summary>Bitwise equality.</summary>
    public static bool operator ==(BFloat16 a, BFloat16 b) => a.Bits == b.Bits;

    /// <summary>Bitwise inequality.</summary>
    public static bool operator !=(BFloat16 a, BFloat16 b) => a.Bits != b.Bits;

    /// <inheritdoc />
    public override string ToString() => ToFloat().ToString(System.Globalization.CultureInfo.InvariantCulture);
}
