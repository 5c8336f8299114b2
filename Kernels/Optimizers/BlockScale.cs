namespace Kernels.Optimizers;

/// <summary>
/// The per-block dequantization scale ("absmax") of a requantized state, with the fix for the signed map's asymmetry.
/// </summary>
/// <remarks>
/// bitsandbytes' signed dynamic map has +1.0 but no −1.0: its most negative code is −0.99296874. With scale = absmax,
/// a block whose largest-magnitude state is negative stores that extreme 0.703 % too small; requantized step after
/// step without fresh gradient signal, the block's scale shrinks geometrically (docs/bitsandbytes.md §5.4).
/// Here, when the extreme is strictly negative, the scale is absmax / 0.99296874, so the extreme lands exactly on the
/// −0.99296874 code and dequantizes back to −absmax (to within an ulp); every other state of the block has a smaller
/// magnitude and stays inside [−0.99296874, +0.99296874]. When the positive side holds the extreme (or a tie), the
/// scale is absmax and +absmax maps to +1.0 exactly. Dequantization is unchanged — <c>code value · scale</c> — so the
/// stored codes and scales dequantize correctly with any bitsandbytes-style dequantizer. Unsigned states always use
/// scale = absmax (their map ends at +1.0).
/// </remarks>
internal static class BlockScale
{
    /// <summary>|most negative signed code| (bitsandbytes' signed dynamic map, index 0), bf7e3333.</summary>
    public const float SignedNegativeExtreme = 0.99296874f;

    /// <summary>The scale of a block from its largest positive and largest negated-negative state (both ≥ 0).</summary>
    public static float Of(bool signed, float maxPositive, float maxNegative) =>
        signed && maxNegative > maxPositive ? maxNegative / SignedNegativeExtreme : maxPositive;

    /// <summary>
    /// A state's reduction key: |s|'s bit pattern shifted left, with bit 0 set for a positive state. The unsigned
    /// maximum of the keys of a block carries its absmax and whether a positive state attains it, which is all
    /// <see cref="Of"/> needs, in one 32-bit value (one shuffle and one atomic per state instead of two).
    /// </summary>
    public static uint Key(float s) => (ILGPU.Interop.FloatAsInt(s) & 0x7FFFFFFFu) << 1 | (s > 0f ? 1u : 0u);

    /// <summary>The scale of a block from the maximum of its states' <see cref="Key"/>s (equal to <see cref="Of"/>).</summary>
    public static float FromKey(bool signed, uint key)
    {
        float absmax = ILGPU.Interop.IntAsFloat(key >> 1);
        return signed && (key & 1u) == 0 && absmax > 0f ? absmax / SignedNegativeExtreme : absmax;
    }

    /// <summary>The multiplier that normalizes a state before the nearest-code search; 0 for an all-zero block.</summary>
    public static float Inverse(float scale) => scale > 0f ? 1f / scale : 0f;
}
