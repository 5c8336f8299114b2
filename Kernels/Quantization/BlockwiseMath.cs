using ILGPU;
using Kernels.Runtime;

namespace Kernels.Quantization;

/// <summary>
/// The per-block and per-element arithmetic of the block-wise quantize kernel. <see cref="BlockwiseReference"/> does not
/// call it: the reference restates the same definitions on its own, so a mistake here fails the kernel-vs-reference
/// tests instead of passing them. Plain fp32 multiplies and compares only: nothing here can be contracted into an FMA.
/// </summary>
internal static class BlockwiseMath
{
    private const float SmallestNormal = 1.17549435e-38f;
    private const float TwoTo64 = 18446744073709551616f;

    /// <summary>True for finite values (false for NaN and ±∞); written with compares so every backend agrees.</summary>
    public static bool IsFinite(float x) => Math.Abs(x) <= float.MaxValue;

    /// <summary>
    /// The scale of a block with finite maximum magnitude <paramref name="absmax"/>: y = (x·pre)·inv. A subnormal absmax
    /// has no finite reciprocal, so both sides are first multiplied by 2^64 (exact); a zero block gets inv = 0.
    /// </summary>
    public static void Scale(float absmax, out float pre, out float inv)
    {
        pre = absmax < SmallestNormal ? TwoTo64 : 1f;
        inv = absmax > 0f ? 1f / (absmax * pre) : 0f;
    }

    /// <summary>
    /// x divided by its block's absmax, with the non-finite rules: NaN → 0 (the zero code), ±∞ → ±1 (saturates to the
    /// extreme code; dequantizes to ±absmax of the finite values).
    /// </summary>
    public static float Normalize(float x, float pre, float inv)
    {
        if (IsFinite(x)) return x * pre * inv;
        if (float.IsNaN(x)) return 0f;
        return x > 0f ? 1f : -1f;
    }

    /// <summary>
    /// Stochastic rounding between the two sorted values around y: the nearest position <paramref name="nearest"/> moves
    /// to the bracketing neighbour, and the upper one wins with probability (y − lo)/(hi − lo).
    /// </summary>
    public static int Stochastic(ArrayView<float> sortedValues, int sortedCount, int nearest, float y, float u)
    {
        float v = sortedValues[nearest];
        int lo = nearest, hi = nearest;
        if (y > v && nearest + 1 < sortedCount) hi = nearest + 1;
        else if (y < v && nearest > 0) lo = nearest - 1;
        if (lo == hi) return nearest;
        float a = sortedValues[lo], b = sortedValues[hi];
        return u * (b - a) < y - a ? hi : lo;
    }

    /// <summary>
    /// The uniform in [0, 1) of element <paramref name="index"/>: the project's counter-based Philox4x32-10
    /// (<see cref="Philox.Uniform"/>) keyed on (seed, offset, element index). Stateless, so any thread computes any
    /// element's number and the result does not depend on the launch geometry.
    /// </summary>
    public static float Uniform(ulong seed, ulong offset, long index) => Philox.Uniform(seed, offset, (ulong)index);
}
