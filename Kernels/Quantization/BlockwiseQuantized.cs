using ILGPU;
using ILGPU.Runtime;
using Kernels.Runtime;
using Kernels.Tensors;

namespace Kernels.Quantization;

/// <summary>
/// A block-wise quantized tensor that owns its device buffers: codes, and either fp32 absmax or nested (double)
/// quantized absmax as QLoRA — offset = mean(absmax), (absmax − offset) quantized with
/// <see cref="CodeBook.DynamicSigned"/> in blocks of <see cref="NestedBlockSize"/>, stored as one byte per block plus one
/// fp32 per 256 blocks. The constructors validate every length, so a malformed instance cannot reach a kernel.
/// </summary>
public sealed class BlockwiseQuantized : IDisposable
{
    /// <summary>Second-level block size of nested absmax (QLoRA's 256).</summary>
    public const int NestedBlockSize = 256;

    /// <summary>Wraps existing buffers of the plain (fp32 absmax) layout; takes ownership.</summary>
    /// <param name="map">Code book of the codes.</param>
    /// <param name="blockSize">Block size of the codes.</param>
    /// <param name="length">Element count.</param>
    /// <param name="elementType">Element type the data came from (informational).</param>
    /// <param name="codes">Exactly <see cref="Blockwise.CodeBytes"/> bytes.</param>
    /// <param name="absmax">Exactly <see cref="Blockwise.BlockCount"/> floats.</param>
    public BlockwiseQuantized(CodeBook map, int blockSize, long length, ElementType elementType,
        DeviceTensor<byte> codes, DeviceTensor<float> absmax)
    {
        Validate(map, blockSize, length, elementType, codes);
        ArgumentNullException.ThrowIfNull(absmax);
        Blockwise.RequireAbsmax(codes.Device, absmax, length, blockSize, nameof(absmax));
        (Map, BlockSize, Length, ElementType, Codes, Absmax) = (map, blockSize, length, elementType, codes, absmax);
    }

    /// <summary>Wraps existing buffers of the nested layout; takes ownership.</summary>
    /// <param name="map">Code book of the codes.</param>
    /// <param name="blockSize">Block size of the codes.</param>
    /// <param name="length">Element count.</param>
    /// <param name="elementType">Element type the data came from (informational).</param>
    /// <param name="codes">Exactly <see cref="Blockwise.CodeBytes"/> bytes.</param>
    /// <param name="nestedCodes">One signed-dynamic code per block.</param>
    /// <param name="nestedAbsmax">One fp32 per <see cref="NestedBlockSize"/> blocks.</param>
    /// <param name="nestedOffset">One fp32: the mean subtracted before nested quantization.</param>
    public BlockwiseQuantized(CodeBook map, int blockSize, long length, ElementType elementType,
        DeviceTensor<byte> codes, DeviceTensor<byte> nestedCodes, DeviceTensor<float> nestedAbsmax, DeviceTensor<float> nestedOffset)
    {
        Validate(map, blockSize, length, elementType, codes);
        ArgumentNullException.ThrowIfNull(nestedCodes);
        ArgumentNullException.ThrowIfNull(nestedAbsmax);
        ArgumentNullException.ThrowIfNull(nestedOffset);
        long blocks = Blockwise.BlockCount(length, blockSize);
        Require.SameDevice(codes.Device, nestedCodes.Device, nameof(nestedCodes));
        Require.Length(nestedCodes.FlattenedLength, blocks, nameof(nestedCodes), $"{blocks} blocks");
        Blockwise.RequireAbsmax(codes.Device, nestedAbsmax, blocks, NestedBlockSize, nameof(nestedAbsmax));
        Require.SameDevice(codes.Device, nestedOffset.Device, nameof(nestedOffset));
        Require.Length(nestedOffset.FlattenedLength, 1, nameof(nestedOffset), "the nested offset");
        (Map, BlockSize, Length, ElementType, Codes) = (map, blockSize, length, elementType, codes);
        (NestedCodes, NestedAbsmax, NestedOffset) = (nestedCodes, nestedAbsmax, nestedOffset);
    }

    private static void Validate(CodeBook map, int blockSize, long length, ElementType elementType, DeviceTensor<byte> codes)
    {
        if (!Enum.IsDefined(elementType))
            throw new ArgumentOutOfRangeException(nameof(elementType), elementType, "elementType must be Float32, Float16 or BFloat16.");
        ArgumentNullException.ThrowIfNull(map);
        ArgumentNullException.ThrowIfNull(codes);
        ObjectDisposedException.ThrowIf(codes.IsDisposed, codes);
        Blockwise.RequireBlockSize(blockSize);
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        Require.Length(codes.FlattenedLength, Blockwise.CodeBytes(length, map), nameof(codes), $"{length} elements with the {map.Bits}-bit map {map.Name}");
    }

    /// <summary>The code book.</summary>
    public CodeBook Map { get; }

    /// <summary>Elements per block.</summary>
    public int BlockSize { get; }

    /// <summary>Element count.</summary>
    public long Length { get; }

    /// <summary>Element type of the data that was quantized (dequantization may target any supported type).</summary>
    public ElementType ElementType { get; }

    /// <summary>The device holding the buffers.</summary>
    public ComputeDevice Device => Codes.Device;

    /// <summary>Codes: one byte per element (8-bit) or two codes per byte, first in the high nibble (4-bit).</summary>
    public DeviceTensor<byte> Codes { get; }

    /// <summary>fp32 absmax per block; null when <see cref="IsNested"/>.</summary>
    public DeviceTensor<float>? Absmax { get; }

    /// <summary>Nested codes of absmax (one per block); null unless <see cref="IsNested"/>.</summary>
    public DeviceTensor<byte>? NestedCodes { get; }

    /// <summary>Second-level fp32 absmax (one per 256 blocks); null unless <see cref="IsNested"/>.</summary>
    public DeviceTensor<float>? NestedAbsmax { get; }

    /// <summary>The one-element mean subtracted before nested quantization; null unless <see cref="IsNested"/>.</summary>
    public DeviceTensor<float>? NestedOffset { get; }

    /// <summary>True when absmax is stored nested (double quantized).</summary>
    public bool IsNested => NestedCodes is not null;

    /// <summary>Bytes of all buffers.</summary>
    public long StorageBytes => Codes.FlattenedLength + (Absmax?.FlattenedLength ?? 0) * 4
        + (NestedCodes?.FlattenedLength ?? 0) + (NestedAbsmax?.FlattenedLength ?? 0) * 4 + (NestedOffset is null ? 0 : 4);

    /// <summary>Storage bits per element (e.g. 8.125 for 8-bit at B = 256; about 4.127 for nested NF4 at B = 64).</summary>
    public double BitsPerElement => Length == 0 ? 0 : 8.0 * StorageBytes / Length;

    /// <summary>
    /// Quantizes <paramref name="input"/> into a new instance (see <see cref="Blockwise.Quantize{T}(ReadOnlyDeviceTensorSpan{T}, CodeBook, int, DeviceTensorSpan{byte}, DeviceTensorSpan{float}, BlockwiseOptions?)"/> for the
    /// semantics). With <paramref name="nested"/>, absmax is double quantized; that path stages fp32 absmax in a
    /// temporary buffer and waits for the device once before freeing it (the only host synchronization of this type).
    /// </summary>
    /// <param name="input">Values (dense).</param>
    /// <param name="map">Code book.</param>
    /// <param name="blockSize">Power of two in [32, 4096].</param>
    /// <param name="nested">Double quantize absmax.</param>
    /// <param name="options">Stochastic rounding of the first level, non-finite counter.</param>
    public static BlockwiseQuantized Quantize<T>(ReadOnlyDeviceTensorSpan<T> input, CodeBook map, int blockSize,
        bool nested = false, BlockwiseOptions? options = null) where T : unmanaged
    {
        Require.Supported<T>(nameof(input));
        Require.Dense(input, nameof(input));
        ArgumentNullException.ThrowIfNull(map);
        Blockwise.RequireBlockSize(blockSize);
        var device = input.Device;
        long n = input.FlattenedLength;
        long blocks = Blockwise.BlockCount(n, blockSize);
        var codes = device.Allocate<byte>((nint)Blockwise.CodeBytes(n, map));
        var absmax = device.Allocate<float>((nint)blocks);
        try
        {
            Blockwise.Quantize(input, map, blockSize, codes, absmax, options);
            if (!nested) return new BlockwiseQuantized(map, blockSize, n, ElementTypes.Of<T>(), codes, absmax);
        }
        catch
        {
            codes.Dispose();
            absmax.Dispose();
            throw;
        }

        var nestedCodes = device.Allocate<byte>((nint)blocks);
        var nestedAbsmax = device.Allocate<float>((nint)Blockwise.BlockCount(blocks, NestedBlockSize));
        var offset = device.Allocate<float>(1);
        var scratch = new List<DeviceTensor<float>> { absmax };
        try
        {
            offset.Span.Clear();
            if (blocks > 0)
            {
                Blockwise.LaunchCanonicalMean(absmax.Span.View, blocks, offset.Span.View, device, scratch);
                Blockwise.LaunchQuantize<float>(absmax.Span.View, offset.Span.View, CodeBook.DynamicSigned, NestedBlockSize,
                    nestedCodes.Span.View, nestedAbsmax.Span.View, ArrayView<long>.Empty, null, device);
            }
            device.Synchronize(); // the staging buffers may only be freed once the kernels that read them are done
            return new BlockwiseQuantized(map, blockSize, n, ElementTypes.Of<T>(), codes, nestedCodes, nestedAbsmax, offset);
        }
        catch
        {
            codes.Dispose();
            nestedCodes.Dispose();
            nestedAbsmax.Dispose();
            offset.Dispose();
            throw;
        }
        finally
        {
            foreach (var s in scratch) s.Dispose();
        }
    }

    /// <summary>Quantizes an owning tensor (element type inferred); see the span overload.</summary>
    /// <param name="input">Values.</param>
    /// <param name="map">Code book.</param>
    /// <param name="blockSize">Power of two in [32, 4096].</param>
    /// <param name="nested">Double quantize absmax.</param>
    /// <param name="options">Stochastic rounding of the first level, non-finite counter.</param>
    public static BlockwiseQuantized Quantize<T>(DeviceTensor<T> input, CodeBook map, int blockSize,
        bool nested = false, BlockwiseOptions? options = null) where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(input);
        return Quantize(input.ReadOnlySpan, map, blockSize, nested, options);
    }

    /// <summary>Dequantizes into an owning tensor (element type inferred).</summary>
    /// <param name="output">Destination.</param>
    public void Dequantize<T>(DeviceTensor<T> output) where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(output);
        Dequantize(output.Span);
    }

    /// <summary>Dequantizes into <paramref name="output"/> (dense, exactly <see cref="Length"/> elements, any supported type).</summary>
    /// <param name="output">Destination.</param>
    public void Dequantize<T>(DeviceTensorSpan<T> output) where T : unmanaged
    {
        ThrowIfDisposed();
        Require.Supported<T>(nameof(output));
        Require.Dense(output, nameof(output));
        Require.SameDevice(Device, output.Device, nameof(output));
        Require.Length(output.FlattenedLength, Length, nameof(output), "this quantized tensor");
        Require.Disjoint(Footprint.Of(output, nameof(output)), Footprints());
        if (Length == 0) return;
        if (!IsNested)
        {
            Blockwise.Dequantize(Codes, Absmax!, Map, BlockSize, output);
            return;
        }
        Blockwise.LaunchDequantize<T>(Codes.Span.View, ArrayView<float>.Empty, NestedCodes!.Span.View, NestedAbsmax!.Span.View,
            NestedOffset!.Span.View, Map, BlockSize, output.View, Device);
    }

    /// <summary>Throws <see cref="ObjectDisposedException"/> once any of the buffers has been disposed (operations call it before launching).</summary>
    internal void ThrowIfDisposed()
    {
        if (Codes.IsDisposed || Absmax is { IsDisposed: true } || NestedCodes is { IsDisposed: true }
            || NestedAbsmax is { IsDisposed: true } || NestedOffset is { IsDisposed: true })
            throw new ObjectDisposedException(nameof(BlockwiseQuantized), "The quantized tensor (or one of its buffers) has been disposed.");
    }

    /// <summary>The device memory of every buffer, for overlap checks of an operation's destinations.</summary>
    internal Footprint[] Footprints()
    {
        var list = new List<Footprint> { Footprint.Of(Codes.ReadOnlySpan, "w.Codes") };
        if (Absmax is { } a) list.Add(Footprint.Of(a.ReadOnlySpan, "w.Absmax"));
        if (NestedCodes is { } nc) list.Add(Footprint.Of(nc.ReadOnlySpan, "w.NestedCodes"));
        if (NestedAbsmax is { } na) list.Add(Footprint.Of(na.ReadOnlySpan, "w.NestedAbsmax"));
        if (NestedOffset is { } no) list.Add(Footprint.Of(no.ReadOnlySpan, "w.NestedOffset"));
        return [.. list];
    }

    /// <summary>Releases every buffer.</summary>
    public void Dispose()
    {
        Codes.Dispose();
        Absmax?.Dispose();
        NestedCodes?.Dispose();
        NestedAbsmax?.Dispose();
        NestedOffset?.Dispose();
    }
}
