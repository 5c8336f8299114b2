using System.Numerics;
using ILGPU;
using ILGPU.Runtime;
using Kernels.Runtime;
using Kernels.Tensors;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Quantization;

/// <summary>
/// Block-wise quantization (bitsandbytes' <c>quantize_blockwise</c> / <c>quantize_4bit</c>): the flattened input is cut
/// into contiguous blocks of <c>blockSize</c> elements (the last one may be partial); each block stores its fp32
/// absmax and one code per element, the nearest entry of a <see cref="CodeBook"/> to x / absmax.
/// </summary>
/// <remarks>
/// <para><b>Layout.</b> 8-bit books: one code per byte. 4-bit books: two codes per byte, the first element in the
/// HIGH nibble; for odd lengths the last low nibble holds the code of 0. absmax is fp32, one per block.</para>
/// <para><b>Block sizes</b>: powers of two from 32 to 4096, for 8-bit and 4-bit books. Lengths are 64-bit.</para>
/// <para><b>Zero, NaN and ∞.</b> absmax is the largest magnitude among the block's <i>finite</i> elements (0 when there
/// is none). An all-zero block stores absmax 0 and the zero code, and dequantizes to exactly 0. NaN encodes as the
/// zero code (dequantizes to 0); +∞ and −∞ saturate to the codes of +1 and −1 (dequantize to ±absmax; for unsigned
/// books −∞ takes the smallest code). So a non-finite element never changes the other elements of its block; use
/// <see cref="BlockwiseOptions.NonFiniteCount"/> to detect them. A subnormal absmax is handled exactly (the division
/// is pre-scaled by 2^64).</para>
/// <para><b>Rounding.</b> Nearest code with ties to the lower code (see <see cref="CodeBook"/>), or seeded stochastic
/// rounding (<see cref="BlockwiseOptions.StochasticSeed"/>). Codes equal <see cref="BlockwiseReference"/>'s exactly.</para>
/// <para>Every call validates all arguments before launching anything, throws <see cref="ArgumentException"/> naming the
/// argument and the shapes, and otherwise enqueues asynchronously on the input's device stream.</para>
/// </remarks>
public static class Blockwise
{
    /// <summary>Smallest accepted block size.</summary>
    public const int MinBlockSize = 32;

    /// <summary>Largest accepted block size.</summary>
    public const int MaxBlockSize = 4096;

    /// <summary>Number of blocks (absmax entries) for <paramref name="length"/> elements: ⌈length / blockSize⌉.</summary>
    public static long BlockCount(long length, int blockSize)
    {
        RequireBlockSize(blockSize);
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        return (length + blockSize - 1) / blockSize;
    }

    /// <summary>Bytes of codes for <paramref name="length"/> elements: length (8-bit) or ⌈length / 2⌉ (4-bit).</summary>
    public static long CodeBytes(long length, CodeBook map)
    {
        ArgumentNullException.ThrowIfNull(map);
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        return map.Bits == 8 ? length : (length + 1) / 2;
    }

    /// <summary>
    /// Quantizes <paramref name="input"/> (dense, any shape, flattened row-major) into <paramref name="codes"/>
    /// (<see cref="CodeBytes"/> bytes) and <paramref name="absmax"/> (<see cref="BlockCount"/> floats).
    /// </summary>
    /// <typeparam name="T">float, <see cref="ILGPU.Half"/> or <see cref="BFloat16"/>.</typeparam>
    /// <param name="input">The values to quantize.</param>
    /// <param name="map">The code book (8-bit or 4-bit).</param>
    /// <param name="blockSize">Elements per block: a power of two in [32, 4096].</param>
    /// <param name="codes">Destination codes.</param>
    /// <param name="absmax">Destination per-block fp32 absmax.</param>
    /// <param name="options">Stochastic rounding and the non-finite counter (null: defaults).</param>
    public static void Quantize<T>(ReadOnlyDeviceTensorSpan<T> input, CodeBook map, int blockSize,
        DeviceTensorSpan<byte> codes, DeviceTensorSpan<float> absmax, BlockwiseOptions? options = null) where T : unmanaged
    {
        Require.Supported<T>(nameof(input));
        DenseOrEmpty(input, nameof(input));
        ArgumentNullException.ThrowIfNull(map);
        RequireBlockSize(blockSize);
        var device = input.Device;
        long n = input.FlattenedLength;
        RequireCodes(device, codes.AsReadOnly(), n, map, nameof(codes));
        RequireAbsmax(device, absmax.AsReadOnly(), n, blockSize, nameof(absmax));
        var counter = options?.NonFiniteCount;
        if (counter is { } c)
        {
            Require.Dense(c, "options.NonFiniteCount");
            Require.SameDevice(device, c.Device, "options.NonFiniteCount");
            Require.Length(c.FlattenedLength, 1, "options.NonFiniteCount", "the non-finite counter");
        }
        var codesFootprint = Footprint.Of(codes, nameof(codes));
        var absmaxFootprint = Footprint.Of(absmax, nameof(absmax));
        var inputFootprint = Footprint.Of(input, nameof(input));
        Require.Disjoint(codesFootprint, inputFootprint, absmaxFootprint);
        Require.Disjoint(absmaxFootprint, inputFootprint);
        if (counter is { } cf)
            Require.Disjoint(Footprint.Of(cf, "options.NonFiniteCount"), inputFootprint, codesFootprint, absmaxFootprint);
        counter?.Clear();
        if (n == 0) return;
        LaunchQuantize<T>(input.View, ArrayView<float>.Empty, map, blockSize, codes.View, absmax.View,
            counter is { } cv ? cv.View : ArrayView<long>.Empty, options?.StochasticSeed, device, options?.StochasticOffset ?? 0);
    }

    /// <summary>
    /// Dequantizes <paramref name="codes"/> and <paramref name="absmax"/> into <paramref name="output"/>:
    /// <c>output[i] = map.Values[code_i] · absmax[i / blockSize]</c> in fp32, rounded to <typeparamref name="T"/>.
    /// The element count is <paramref name="output"/>'s.
    /// </summary>
    /// <param name="codes">Codes (<see cref="CodeBytes"/> bytes for the output's length).</param>
    /// <param name="absmax">Per-block absmax (<see cref="BlockCount"/> floats).</param>
    /// <param name="map">The code book the codes were made with.</param>
    /// <param name="blockSize">The block size the codes were made with.</param>
    /// <param name="output">Destination (dense).</param>
    public static void Dequantize<T>(ReadOnlyDeviceTensorSpan<byte> codes, ReadOnlyDeviceTensorSpan<float> absmax,
        CodeBook map, int blockSize, DeviceTensorSpan<T> output) where T : unmanaged
    {
        Require.Supported<T>(nameof(output));
        DenseOrEmpty(output.AsReadOnly(), nameof(output));
        ArgumentNullException.ThrowIfNull(map);
        RequireBlockSize(blockSize);
        var device = codes.Device ?? output.Device;
        long n = output.FlattenedLength;
        RequireOutputMatchesCodes(codes, absmax, map, blockSize, n);
        RequireCodes(device, codes, n, map, nameof(codes));
        RequireAbsmax(device, absmax, n, blockSize, nameof(absmax));
        Require.SameDevice(device, output.Device, nameof(output));
        Require.Disjoint(Footprint.Of(output, nameof(output)), Footprint.Of(codes, nameof(codes)), Footprint.Of(absmax, nameof(absmax)));
        if (n == 0) return;
        LaunchDequantize<T>(codes.View, absmax.View, ArrayView<byte>.Empty, ArrayView<float>.Empty, ArrayView<float>.Empty, map, blockSize, output.View, device);
    }

    /// <summary>
    /// <see cref="Quantize{T}(ReadOnlyDeviceTensorSpan{T}, CodeBook, int, DeviceTensorSpan{byte}, DeviceTensorSpan{float}, BlockwiseOptions?)"/>
    /// for an owning tensor, so the element type is inferred (C# does not infer through the implicit view conversion).
    /// </summary>
    /// <param name="input">The values to quantize.</param>
    /// <param name="map">The code book.</param>
    /// <param name="blockSize">Elements per block.</param>
    /// <param name="codes">Destination codes.</param>
    /// <param name="absmax">Destination absmax.</param>
    /// <param name="options">Options (null: defaults).</param>
    public static void Quantize<T>(DeviceTensor<T> input, CodeBook map, int blockSize,
        DeviceTensorSpan<byte> codes, DeviceTensorSpan<float> absmax, BlockwiseOptions? options = null) where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(input);
        Quantize(input.ReadOnlySpan, map, blockSize, codes, absmax, options);
    }

    /// <summary>The same for a writable view (element type inferred).</summary>
    /// <param name="input">The values to quantize.</param>
    /// <param name="map">The code book.</param>
    /// <param name="blockSize">Elements per block.</param>
    /// <param name="codes">Destination codes.</param>
    /// <param name="absmax">Destination absmax.</param>
    /// <param name="options">Options (null: defaults).</param>
    public static void Quantize<T>(DeviceTensorSpan<T> input, CodeBook map, int blockSize,
        DeviceTensorSpan<byte> codes, DeviceTensorSpan<float> absmax, BlockwiseOptions? options = null) where T : unmanaged =>
        Quantize(input.AsReadOnly(), map, blockSize, codes, absmax, options);

    /// <summary>
    /// <see cref="Dequantize{T}(ReadOnlyDeviceTensorSpan{byte}, ReadOnlyDeviceTensorSpan{float}, CodeBook, int, DeviceTensorSpan{T})"/>
    /// into an owning tensor (element type inferred).
    /// </summary>
    /// <param name="codes">Codes.</param>
    /// <param name="absmax">Per-block absmax.</param>
    /// <param name="map">The code book.</param>
    /// <param name="blockSize">The block size.</param>
    /// <param name="output">Destination.</param>
    public static void Dequantize<T>(ReadOnlyDeviceTensorSpan<byte> codes, ReadOnlyDeviceTensorSpan<float> absmax,
        CodeBook map, int blockSize, DeviceTensor<T> output) where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(output);
        Dequantize(codes, absmax, map, blockSize, output.Span);
    }

    internal static void RequireBlockSize(int blockSize)
    {
        if (blockSize < MinBlockSize || blockSize > MaxBlockSize || !BitOperations.IsPow2(blockSize))
            throw new ArgumentOutOfRangeException(nameof(blockSize), blockSize,
                $"blockSize must be a power of two from {MinBlockSize} to {MaxBlockSize}.");
    }

    // An empty tensor has no layout to check (its strides are degenerate), only a device.
    internal static void DenseOrEmpty<T>(ReadOnlyDeviceTensorSpan<T> span, string name) where T : unmanaged
    {
        Require.Live(span, name);
        if (span.IsEmptyView || span.FlattenedLength > 0) Require.Dense(span, name);
    }

    // codes and absmax that agree with each other on an element count other than output's: the output is the odd one out.
    private static void RequireOutputMatchesCodes(ReadOnlyDeviceTensorSpan<byte> codes, ReadOnlyDeviceTensorSpan<float> absmax,
        CodeBook map, int blockSize, long n)
    {
        if (codes.IsEmptyView || absmax.IsEmptyView || codes.FlattenedLength == CodeBytes(n, map)) return;
        long held = map.Bits == 8 ? codes.FlattenedLength : 2 * codes.FlattenedLength;
        bool agree = absmax.FlattenedLength == BlockCount(held, blockSize)
            || (map.Bits == 4 && held > 0 && absmax.FlattenedLength == BlockCount(held - 1, blockSize));
        if (agree)
            throw new ArgumentException(
                $"output has {n} elements but codes ({codes.FlattenedLength} bytes of the {map.Bits}-bit map {map.Name}) and absmax " +
                $"({absmax.FlattenedLength} blocks of {blockSize}) hold {(map.Bits == 8 ? held.ToString() : $"{held - 1} or {held}")}.", "output");
    }

    internal static void RequireCodes(ComputeDevice device, ReadOnlyDeviceTensorSpan<byte> codes, long n, CodeBook map, string name)
    {
        DenseOrEmpty(codes, name);
        Require.SameDevice(device, codes.Device, name);
        Require.Length(codes.FlattenedLength, CodeBytes(n, map), name, $"{n} elements with the {map.Bits}-bit map {map.Name}");
    }

    internal static void RequireAbsmax(ComputeDevice device, ReadOnlyDeviceTensorSpan<float> absmax, long n, int blockSize, string name)
    {
        DenseOrEmpty(absmax, name);
        Require.SameDevice(device, absmax.Device, name);
        Require.Length(absmax.FlattenedLength, BlockCount(n, blockSize), name, $"{n} elements in blocks of {blockSize}");
    }

    // ---- launches (arguments already validated) ----

    private static bool Aligned16<T>(ArrayView<T> view) where T : unmanaged =>
        ((IContiguousArrayView)view).IndexInBytes % 16 == 0;

    private static ArrayView<Vec16> AsVectors<T>(ArrayView<T> view) where T : unmanaged =>
        view.Length * Interop.SizeOf<T>() >= 16 ? view.Cast<Vec16>() : ArrayView<Vec16>.Empty;

    // The CPU accelerator runs one OS thread per group thread and its barriers cost milliseconds, so small groups there
    // (any size works: the kernels use no warp intrinsics).
    private static int GroupSize(ComputeDevice device) => device.IsCuda ? BlockwiseKernels.MaxGroupSize : CpuGroupSize;

    /// <summary>Group size on the CPU accelerator (tests vary it: every power of two up to 256 must give the same codes).</summary>
    internal static int CpuGroupSize { get; set; } = 4;

    internal static void LaunchQuantize<T>(ArrayView<T> input, ArrayView<float> offset, CodeBook map, int blockSize,
        ArrayView<byte> codes, ArrayView<float> absmax, ArrayView<long> nonFinite, ulong? seed, ComputeDevice device,
        ulong streamOffset = 0) where T : unmanaged
    {
        var table = map.Upload(device);
        int group = GroupSize(device);
        int chunk = map.Bits == 8 ? 16 : 32;
        int tile = Math.Max(blockSize, group * chunk);
        long n = input.Length;
        bool vectorized = Aligned16(input) && Aligned16(codes);
        var p = new QuantizeParams
        {
            Length = n,
            BlockShift = BitOperations.Log2((uint)blockSize),
            Bits = map.Bits,
            TileElements = tile,
            ChunkElements = chunk,
            SortedCount = map.Sorted.Length,
            MapCodes = map.IsAscendingByCode ? 0 : 1,
            Stochastic = seed.HasValue ? 1 : 0,
            Seed = seed ?? 0,
            StreamOffset = streamOffset,
            Vectorized = vectorized ? 1 : 0,
        };
        long tiles = (n + tile - 1) / tile;
        var config = new KernelConfig(device.GroupsFor(tiles * group, group), group, SharedMemoryConfig.RequestDynamic<float>(tile));
        var inputVec = vectorized ? AsVectors(input) : ArrayView<Vec16>.Empty;
        var codesVec = vectorized ? AsVectors(codes) : ArrayView<Vec16>.Empty;
        var stream = device.Stream;
        switch (ElementTypes.Of<T>())
        {
            case ElementType.Float32:
                QuantizeKernel<float, F32Lanes>(device)(stream, config, input.Cast<float>(), inputVec, offset,
                    table.SearchMidpoints, table.SortedCodes, table.SortedValues, codes, codesVec, absmax, nonFinite, p);
                break;
            case ElementType.Float16:
                QuantizeKernel<DeviceHalf, F16Lanes>(device)(stream, config, input.Cast<DeviceHalf>(), inputVec, offset,
                    table.SearchMidpoints, table.SortedCodes, table.SortedValues, codes, codesVec, absmax, nonFinite, p);
                break;
            default:
                QuantizeKernel<BFloat16, BF16Lanes>(device)(stream, config, input.Cast<BFloat16>(), inputVec, offset,
                    table.SearchMidpoints, table.SortedCodes, table.SortedValues, codes, codesVec, absmax, nonFinite, p);
                break;
        }
    }

    internal static void LaunchDequantize<T>(ArrayView<byte> codes, ArrayView<float> absmax,
        ArrayView<byte> nestedCodes, ArrayView<float> nestedAbsmax, ArrayView<float> nestedOffset,
        CodeBook map, int blockSize, ArrayView<T> output, ComputeDevice device) where T : unmanaged
    {
        var table = map.Upload(device);
        bool nested = nestedCodes.Length > 0;
        var nestedValues = nested ? CodeBook.DynamicSigned.Upload(device).Values : table.Values;
        int group = GroupSize(device);
        int chunk = map.Bits == 8 ? 16 : 32;
        long n = output.Length;
        bool vectorized = Aligned16(codes) && Aligned16(output);
        var p = new DequantizeParams
        {
            Length = n,
            BlockShift = BitOperations.Log2((uint)blockSize),
            Bits = map.Bits,
            ChunkElements = chunk,
            Vectorized = vectorized ? 1 : 0,
            Nested = nested ? 1 : 0,
        };
        long chunks = (n + chunk - 1) / chunk;
        var config = new KernelConfig(device.GroupsFor(chunks, group), group);
        var codesVec = vectorized ? AsVectors(codes) : ArrayView<Vec16>.Empty;
        var outputVec = vectorized ? AsVectors(output) : ArrayView<Vec16>.Empty;
        var stream = device.Stream;
        switch (ElementTypes.Of<T>())
        {
            case ElementType.Float32:
                DequantizeKernel<float, F32Lanes>(device)(stream, config, codes, codesVec, absmax, nestedCodes, nestedAbsmax,
                    nestedOffset, nestedValues, table.Values, output.Cast<float>(), outputVec, p);
                break;
            case ElementType.Float16:
                DequantizeKernel<DeviceHalf, F16Lanes>(device)(stream, config, codes, codesVec, absmax, nestedCodes, nestedAbsmax,
                    nestedOffset, nestedValues, table.Values, output.Cast<DeviceHalf>(), outputVec, p);
                break;
            default:
                DequantizeKernel<BFloat16, BF16Lanes>(device)(stream, config, codes, codesVec, absmax, nestedCodes, nestedAbsmax,
                    nestedOffset, nestedValues, table.Values, output.Cast<BFloat16>(), outputVec, p);
                break;
        }
    }

    private static Action<AcceleratorStream, KernelConfig, ArrayView<T>, ArrayView<Vec16>, ArrayView<float>, ArrayView<float>,
        ArrayView<byte>, ArrayView<float>, ArrayView<byte>, ArrayView<Vec16>, ArrayView<float>, ArrayView<long>, QuantizeParams>
        QuantizeKernel<T, TLanes>(ComputeDevice device) where T : unmanaged where TLanes : struct, ILanes<T> =>
        device.GetKernel(("Blockwise.Quantize", typeof(T)), acc => acc.LoadCatalogKernel<ArrayView<T>, ArrayView<Vec16>,
            ArrayView<float>, ArrayView<float>, ArrayView<byte>, ArrayView<float>, ArrayView<byte>, ArrayView<Vec16>,
            ArrayView<float>, ArrayView<long>, QuantizeParams>(BlockwiseKernels.Quantize<T, TLanes>));

    private static Action<AcceleratorStream, KernelConfig, ArrayView<byte>, ArrayView<Vec16>, ArrayView<float>, ArrayView<byte>,
        ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<T>, ArrayView<Vec16>, DequantizeParams>
        DequantizeKernel<T, TLanes>(ComputeDevice device) where T : unmanaged where TLanes : struct, ILanes<T> =>
        device.GetKernel(("Blockwise.Dequantize", typeof(T)), acc => acc.LoadCatalogKernel<ArrayView<byte>, ArrayView<Vec16>,
            ArrayView<float>, ArrayView<byte>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<T>, ArrayView<Vec16>, DequantizeParams>(BlockwiseKernels.Dequantize<T, TLanes>));

    /// <summary>
    /// Enqueues the canonical mean of <paramref name="source"/> (<paramref name="length"/> values) into
    /// <paramref name="mean"/>[0]: passes of <see cref="BlockwiseKernels.CanonicalSumPass"/> until one value remains.
    /// Temporary partial buffers are added to <paramref name="scratch"/> for the caller to free after the stream drains.
    /// </summary>
    internal static void LaunchCanonicalMean(ArrayView<float> source, long length, ArrayView<float> mean, ComputeDevice device,
        List<DeviceTensor<float>> scratch)
    {
        int group = GroupSize(device);
        var kernel = device.GetKernel("Blockwise.CanonicalSumPass", acc =>
            acc.LoadCatalogKernel<ArrayView<float>, ArrayView<float>, long, float>(BlockwiseKernels.CanonicalSumPass));
        float divisor = length;
        long current = length;
        var src = source;
        while (true)
        {
            long chunks = Math.Max(1, (current + BlockwiseKernels.CanonicalChunk - 1) / BlockwiseKernels.CanonicalChunk);
            ArrayView<float> dst;
            if (chunks == 1) dst = mean;
            else
            {
                var t = device.Allocate<float>((nint)chunks);
                scratch.Add(t);
                dst = t.Span.View;
            }
            kernel(device.Stream, new KernelConfig(device.GroupsFor(chunks * group, group), group), src, dst, current,
                chunks == 1 ? divisor : 1f);
            if (chunks == 1) return;
            src = dst;
            current = chunks;
        }
    }
}
