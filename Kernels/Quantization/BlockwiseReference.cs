using System.Runtime.CompilerServices;
using Kernels.Runtime;
using Kernels.Tensors;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Quantization;

/// <summary>
/// CPU reference of <see cref="Blockwise"/> and <see cref="BlockwiseQuantized"/> over host spans: the tests' oracle and
/// a usable CPU path. It is written from the definitions, bitsandbytes' pure-torch backend
/// (<c>bitsandbytes/backends/default/ops.py</c>, docs/bitsandbytes.md §2) plus the library's documented zero, NaN, ∞ and
/// subnormal rules, and shares no arithmetic with the kernels: not <see cref="BlockwiseMath"/>, not the code-book search
/// (<see cref="CodeBook.SearchPosition(ReadOnlySpan{float}, int, float)"/>), not the element conversions of the
/// kernels. What it shares are fixed facts: the code-book values (<see cref="CodeBook.Values"/>, tested against their
/// SHA-256 and their recipe) and the project's Philox generator (tested against Random123's known answers).
/// Element types: float, <see cref="ILGPU.Half"/>, <see cref="BFloat16"/>.
/// </summary>
/// <remarks>
/// Where the bits of a result depend on an evaluation order, the reference spells the order out, and the kernels must
/// follow it: the scale is a rounded fp32 reciprocal times x (bitsandbytes' <c>A * (1.0 / absmax)</c>, not x / absmax,
/// which rounds differently); the bucket bounds are the fp32 sums of neighbouring sorted values halved
/// (<c>(code[:-1] + code[1:]) / 2</c>); stochastic rounding compares u·(hi − lo) with y − lo; the nested mean is the
/// fixed-order <see cref="CanonicalSum"/>.
/// </remarks>
public static class BlockwiseReference
{
    private const float TwoTo64 = 18446744073709551616f;

    /// <summary>Quantizes <paramref name="input"/> and returns new code and absmax arrays (see <see cref="Blockwise.Quantize{T}(ReadOnlyDeviceTensorSpan{T}, CodeBook, int, DeviceTensorSpan{byte}, DeviceTensorSpan{float}, BlockwiseOptions?)"/>).</summary>
    /// <param name="input">Values.</param>
    /// <param name="map">Code book.</param>
    /// <param name="blockSize">Power of two in [32, 4096].</param>
    /// <param name="stochasticSeed">Seed for stochastic rounding, or null for round-to-nearest.</param>
    /// <param name="stochasticOffset">Philox stream of stochastic rounding (<see cref="BlockwiseOptions.StochasticOffset"/>).</param>
    public static (byte[] Codes, float[] Absmax) Quantize<T>(ReadOnlySpan<T> input, CodeBook map, int blockSize, ulong? stochasticSeed = null,
        ulong stochasticOffset = 0) where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(map);
        var codes = new byte[Blockwise.CodeBytes(input.Length, map)];
        var absmax = new float[Blockwise.BlockCount(input.Length, blockSize)];
        Quantize(input, map, blockSize, codes, absmax, stochasticSeed, stochasticOffset);
        return (codes, absmax);
    }

    /// <summary>Quantizes into caller-provided spans; returns the number of NaN/±∞ inputs (what the device counter receives).</summary>
    /// <param name="input">Values.</param>
    /// <param name="map">Code book.</param>
    /// <param name="blockSize">Power of two in [32, 4096].</param>
    /// <param name="codes">Exactly <see cref="Blockwise.CodeBytes"/> bytes.</param>
    /// <param name="absmax">Exactly <see cref="Blockwise.BlockCount"/> floats.</param>
    /// <param name="stochasticSeed">Seed for stochastic rounding, or null for round-to-nearest.</param>
    /// <param name="stochasticOffset">Philox stream of stochastic rounding (<see cref="BlockwiseOptions.StochasticOffset"/>).</param>
    public static long Quantize<T>(ReadOnlySpan<T> input, CodeBook map, int blockSize, Span<byte> codes, Span<float> absmax,
        ulong? stochasticSeed = null, ulong stochasticOffset = 0) where T : unmanaged =>
        QuantizeWithOffset(input, 0f, map, blockSize, codes, absmax, stochasticSeed, stochasticOffset);

    internal static long QuantizeWithOffset<T>(ReadOnlySpan<T> input, float offset, CodeBook map, int blockSize,
        Span<byte> codes, Span<float> absmax, ulong? stochasticSeed, ulong stochasticOffset = 0) where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(map);
        if (!ElementTypes.IsSupported<T>()) throw new NotSupportedException($"Element type {typeof(T).Name} is not supported.");
        Blockwise.RequireBlockSize(blockSize);
        int n = input.Length;
        if (codes.Length != Blockwise.CodeBytes(n, map))
            throw new ArgumentException($"codes has {codes.Length} bytes but {n} elements with {map.Name} need {Blockwise.CodeBytes(n, map)}.", nameof(codes));
        if (absmax.Length != Blockwise.BlockCount(n, blockSize))
            throw new ArgumentException($"absmax has {absmax.Length} entries but {n} elements in blocks of {blockSize} need {Blockwise.BlockCount(n, blockSize)}.", nameof(absmax));

        var buckets = new Buckets(map);
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = Widen(input[i]) - offset;
        long bad = 0;
        var q = new byte[n];
        for (int b = 0; b < absmax.Length; b++)
        {
            int start = b * blockSize, end = Math.Min(n, start + blockSize);
            // absmax: the largest magnitude among the block's finite elements, 0 when there is none (bitsandbytes takes
            // every element, so one ∞ poisons its block; the library keeps ∞ and NaN out of the scale).
            float m = 0f;
            for (int i = start; i < end; i++)
            {
                if (float.IsFinite(x[i])) m = Math.Max(m, Math.Abs(x[i]));
                else bad++;
            }
            absmax[b] = m;
            for (int i = start; i < end; i++)
            {
                float y = Scaled(x[i], m);
                int bucket = buckets.Nearest(y);
                if (stochasticSeed is ulong seed)
                    bucket = buckets.Stochastic(y, Philox.Uniform(seed, stochasticOffset, (ulong)i));
                q[i] = buckets.Code[bucket];
            }
        }
        if (map.Bits == 8)
        {
            q.CopyTo(codes);
            return bad;
        }
        // 4-bit: byte j = q[2j] << 4 | q[2j+1] (bitsandbytes' `(q8[::2] << 4) | q8[1::2]`); an odd length is padded with
        // one more element of value 0, as bitsandbytes pads `scaled` with 0 before packing.
        byte pad = buckets.Code[buckets.Nearest(0f)];
        for (int j = 0; j < codes.Length; j++)
            codes[j] = (byte)((q[2 * j] << 4) | (2 * j + 1 < n ? q[2 * j + 1] : pad));
        return bad;
    }

    /// <summary>
    /// x / absmax as the library defines it. Finite x: bitsandbytes' <c>A * (1.0 / absmax)</c>, one rounded fp32
    /// reciprocal then one rounded multiply; for a subnormal absmax, whose reciprocal is not finite in fp32, both are
    /// first multiplied by 2^64 (exact); a zero block scales to 0. NaN scales to 0 (the zero code), ±∞ to ±1 (the extreme
    /// codes). The result is clamped to [−1, 1] as bitsandbytes does; no bound lies outside (−1, 1), so the clamp never
    /// changes a bucket, and the kernels omit it.
    /// </summary>
    private static float Scaled(float x, float absmax)
    {
        float y;
        if (float.IsNaN(x)) y = 0f;
        else if (float.IsInfinity(x)) y = x > 0f ? 1f : -1f;
        else if (absmax == 0f) y = 0f;
        else if (float.IsSubnormal(absmax)) y = (x * TwoTo64) * (1f / (absmax * TwoTo64));
        else y = x * (1f / absmax);
        return Math.Clamp(y, -1f, 1f);
    }

    /// <summary>
    /// bitsandbytes' buckets for one code book: the distinct values ascending (for equal values the lowest code is kept,
    /// so FP4's −0 is never produced; bitsandbytes' <c>argsort</c> keeps both zeros and sends (0, 0.0026] to −0), the
    /// bounds between neighbours <c>(v[i] + v[i+1]) / 2</c> in fp32, and each bucket's code.
    /// </summary>
    private sealed class Buckets
    {
        public readonly float[] Value;
        public readonly float[] Bound;
        public readonly byte[] Code;

        public Buckets(CodeBook map)
        {
            var values = map.Values;
            var byValue = new List<(float Value, int Code)>();
            for (int c = 0; c < values.Length; c++) byValue.Add((values[c], c));
            byValue.Sort((a, b) => a.Value != b.Value ? a.Value.CompareTo(b.Value) : a.Code.CompareTo(b.Code));
            var kept = new List<(float Value, int Code)>();
            foreach (var e in byValue)
                if (kept.Count == 0 || kept[^1].Value != e.Value) kept.Add(e);
            Value = kept.Select(e => e.Value).ToArray();
            Code = kept.Select(e => (byte)e.Code).ToArray();
            Bound = new float[Value.Length - 1];
            for (int i = 0; i < Bound.Length; i++) Bound[i] = (Value[i] + Value[i + 1]) / 2f;
        }

        /// <summary>
        /// <c>torch.bucketize(y, bounds)</c> (right = False): the number of bounds strictly below y, counted over all of
        /// them. A y exactly on a bound takes the lower bucket; NaN (never passed here) would take bucket 0.
        /// </summary>
        public int Nearest(float y)
        {
            int count = 0;
            foreach (float bound in Bound)
                if (bound < y) count++;
            return count;
        }

        /// <summary>
        /// Stochastic rounding (<see cref="BlockwiseOptions.StochasticSeed"/>): y between neighbouring values lo &lt; y &lt; hi
        /// takes hi with probability (y − lo)/(hi − lo), decided as <c>u·(hi − lo) &lt; y − lo</c>: one fp32 difference,
        /// one fp32 product, one fp32 difference, one compare. An equivalent real expression such as
        /// u &lt; (y − lo)/(hi − lo) rounds differently and picks the other value for some u, so this order is the
        /// definition the kernels follow. y equal to a value, or outside [v[0], v[^1]], keeps that value.
        /// </summary>
        public int Stochastic(float y, float u)
        {
            if (y <= Value[0]) return 0;
            if (y >= Value[^1]) return Value.Length - 1;
            int lo = 0;
            while (Value[lo + 1] <= y) lo++;
            if (Value[lo] == y) return lo;
            float a = Value[lo], b = Value[lo + 1];
            float width = b - a, product = u * width, distance = y - a;
            return product < distance ? lo + 1 : lo;
        }
    }

    // Element conversions written here rather than borrowed from the kernels' lanes: f16 through the BCL's System.Half,
    // bf16 as the upper 16 bits of an f32 (round to nearest even when narrowing).
    private static float Widen<T>(T value) where T : unmanaged
    {
        if (typeof(T) == typeof(float)) return Unsafe.As<T, float>(ref value);
        ushort bits = Unsafe.As<T, ushort>(ref value);
        if (typeof(T) == typeof(DeviceHalf)) return (float)BitConverter.UInt16BitsToHalf(bits);
        return BitConverter.UInt32BitsToSingle((uint)bits << 16);
    }

    private static T Narrow<T>(float value) where T : unmanaged
    {
        if (typeof(T) == typeof(float)) return Unsafe.As<float, T>(ref value);
        ushort bits;
        if (typeof(T) == typeof(DeviceHalf)) bits = BitConverter.HalfToUInt16Bits((System.Half)value);
        else
        {
            uint f = BitConverter.SingleToUInt32Bits(value);
            bits = float.IsNaN(value) ? (ushort)((f >> 16) | 0x40) : (ushort)((f + 0x7FFFu + ((f >> 16) & 1u)) >> 16);
        }
        return Unsafe.As<ushort, T>(ref bits);
    }

    /// <summary>Dequantizes into <paramref name="output"/> (its length is the element count): <c>Values[code] · absmax</c> in fp32.</summary>
    /// <param name="codes">Codes.</param>
    /// <param name="absmax">Per-block absmax.</param>
    /// <param name="map">Code book.</param>
    /// <param name="blockSize">Block size.</param>
    /// <param name="output">Destination.</param>
    public static void Dequantize<T>(ReadOnlySpan<byte> codes, ReadOnlySpan<float> absmax, CodeBook map, int blockSize, Span<T> output)
        where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(map);
        Blockwise.RequireBlockSize(blockSize);
        int n = output.Length;
        if (codes.Length != Blockwise.CodeBytes(n, map)) throw new ArgumentException("codes length does not match the output.", nameof(codes));
        if (absmax.Length != Blockwise.BlockCount(n, blockSize)) throw new ArgumentException("absmax length does not match the output.", nameof(absmax));
        if (!ElementTypes.IsSupported<T>()) throw new NotSupportedException($"Element type {typeof(T).Name} is not supported.");
        // bitsandbytes: code[q] * absmax[block] in fp32, then one rounding to the output type. 4-bit: element 2j is the
        // high nibble of byte j.
        var values = map.Values;
        for (int i = 0; i < n; i++)
        {
            int code = map.Bits == 8 ? codes[i] : i % 2 == 0 ? codes[i / 2] / 16 : codes[i / 2] % 16;
            output[i] = Narrow<T>(values[code] * absmax[i / blockSize]);
        }
    }

    /// <summary>Dequantizes to a new array of <paramref name="length"/> elements.</summary>
    /// <param name="codes">Codes.</param>
    /// <param name="absmax">Per-block absmax.</param>
    /// <param name="map">Code book.</param>
    /// <param name="blockSize">Block size.</param>
    /// <param name="length">Element count.</param>
    public static float[] Dequantize(ReadOnlySpan<byte> codes, ReadOnlySpan<float> absmax, CodeBook map, int blockSize, int length)
    {
        var output = new float[length];
        Dequantize<float>(codes, absmax, map, blockSize, output);
        return output;
    }

    // The canonical order (a definition, not shared code: BlockwiseKernels.CanonicalSumPass must follow it).
    private const int CanonicalChunk = 4096;
    private const int CanonicalLanes = 256;

    /// <summary>
    /// The canonical fp32 sum the device computes for the nested offset, divided by <paramref name="divisor"/>: passes that
    /// turn each 4096-element chunk into one partial (256 lanes of 16 strided sequential adds, then a pairwise tree over
    /// the lanes) until one value remains; the last pass divides. Fixed order, so device and host agree bit for bit.
    /// </summary>
    /// <param name="values">Values to sum.</param>
    /// <param name="divisor">Divides the final sum (the element count for a mean).</param>
    public static float CanonicalSum(ReadOnlySpan<float> values, float divisor = 1f)
    {
        float[] current = values.ToArray();
        long length = current.Length;
        float[] partials;
        do
        {
            long chunks = Math.Max(1, (length + CanonicalChunk - 1) / CanonicalChunk);
            partials = new float[chunks];
            float d = chunks == 1 ? divisor : 1f;
            var lanes = new float[CanonicalLanes];
            for (long c = 0; c < chunks; c++)
            {
                long start = c * CanonicalChunk;
                for (int l = 0; l < lanes.Length; l++)
                {
                    float acc = 0f;
                    for (int i = 0; i < CanonicalChunk / CanonicalLanes; i++)
                    {
                        long e = start + l + (long)i * CanonicalLanes;
                        if (e < length) acc += current[e];
                    }
                    lanes[l] = acc;
                }
                for (int s = lanes.Length / 2; s > 0; s >>= 1)
                    for (int l = 0; l < s; l++) lanes[l] += lanes[l + s];
                partials[c] = lanes[0] / d;
            }
            current = partials;
            length = partials.Length;
        } while (length > 1);
        return current[0];
    }

    /// <summary>
    /// Nested (double) quantization of absmax as QLoRA: offset = mean(absmax) (<see cref="CanonicalSum"/>), then
    /// absmax − offset quantized with <see cref="CodeBook.DynamicSigned"/> in blocks of 256.
    /// </summary>
    /// <param name="absmax">First-level absmax.</param>
    public static (byte[] Codes, float[] Absmax, float Offset) QuantizeNested(ReadOnlySpan<float> absmax)
    {
        float offset = CanonicalSum(absmax, absmax.Length);
        var codes = new byte[absmax.Length];
        var nested = new float[Blockwise.BlockCount(absmax.Length, BlockwiseQuantized.NestedBlockSize)];
        QuantizeWithOffset(absmax, offset, CodeBook.DynamicSigned, BlockwiseQuantized.NestedBlockSize, codes, nested, null);
        return (codes, nested, offset);
    }

    /// <summary>Reconstructs first-level absmax from its nested form: <c>DynamicSigned[code] · nestedAbsmax[b / 256] + offset</c>.</summary>
    /// <param name="codes">Nested codes (one per first-level block).</param>
    /// <param name="nestedAbsmax">Second-level absmax.</param>
    /// <param name="offset">The mean that was subtracted.</param>
    public static float[] DequantizeNested(ReadOnlySpan<byte> codes, ReadOnlySpan<float> nestedAbsmax, float offset)
    {
        var values = CodeBook.DynamicSigned.Values;
        var absmax = new float[codes.Length];
        for (int b = 0; b < codes.Length; b++)
            absmax[b] = values[codes[b]] * nestedAbsmax[b / BlockwiseQuantized.NestedBlockSize] + offset;
        return absmax;
    }
}
