using Kernels.Tensors;

namespace Kernels.Quantization;

/// <summary>
/// CPU reference of <see cref="Blockwise"/> and <see cref="BlockwiseQuantized"/> over host spans: the tests' oracle and
/// a usable CPU path. It calls the same per-element arithmetic and the same code-book search as the kernels
/// (<see cref="CodeBook.SearchPosition(ReadOnlySpan{float}, int, float)"/>), so its codes are equal to the device's,
/// including stochastic rounding for a given seed. Element types: float, <see cref="ILGPU.Half"/>, <see cref="BFloat16"/>.
/// </summary>
public static class BlockwiseReference
{
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

        var mids = map.SearchMidpoints;
        var sortedCodes = map.SortedCodes;
        var sorted = map.Sorted;
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = ElementTypes.ToFloat(input[i]) - offset;
        if (map.Bits == 4) codes.Clear();
        long bad = 0;
        for (int b = 0; b < absmax.Length; b++)
        {
            int start = b * blockSize, end = Math.Min(n, start + blockSize);
            float m = 0f;
            for (int i = start; i < end; i++)
            {
                if (BlockwiseMath.IsFinite(x[i])) m = Math.Max(m, Math.Abs(x[i]));
                else bad++;
            }
            absmax[b] = m;
            BlockwiseMath.Scale(m, out float pre, out float inv);
            for (int i = start; i < end; i++)
            {
                float y = BlockwiseMath.Normalize(x[i], pre, inv);
                int pos = CodeBook.SearchPosition(mids, map.Bits, y);
                if (stochasticSeed is ulong seed)
                    pos = BlockwiseMath.Stochastic(sorted, sorted.Length, pos, y, BlockwiseMath.Uniform(seed, stochasticOffset, i));
                byte code = sortedCodes[pos];
                if (map.Bits == 8) codes[i] = code;
                else codes[i >> 1] |= (byte)((i & 1) == 0 ? code << 4 : code);
            }
        }
        if (map.Bits == 4 && (n & 1) == 1) codes[n >> 1] |= (byte)map.ZeroCode; // pad nibble = code of 0
        return bad;
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
        var values = map.Values;
        for (int i = 0; i < n; i++)
        {
            int code = map.Bits == 8 ? codes[i] : (codes[i >> 1] >> ((i & 1) == 0 ? 4 : 0)) & 0xF;
            output[i] = ElementTypes.FromFloat<T>(values[code] * absmax[i / blockSize]);
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
            long chunks = Math.Max(1, (length + BlockwiseKernels.CanonicalChunk - 1) / BlockwiseKernels.CanonicalChunk);
            partials = new float[chunks];
            float d = chunks == 1 ? divisor : 1f;
            var lanes = new float[BlockwiseKernels.CanonicalLanes];
            for (long c = 0; c < chunks; c++)
            {
                long start = c * BlockwiseKernels.CanonicalChunk;
                for (int l = 0; l < lanes.Length; l++)
                {
                    float acc = 0f;
                    for (int i = 0; i < BlockwiseKernels.CanonicalChunk / BlockwiseKernels.CanonicalLanes; i++)
                    {
                        long e = start + l + (long)i * BlockwiseKernels.CanonicalLanes;
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
