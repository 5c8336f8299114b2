using ILGPU;
using ILGPU.Runtime;
using Kernels.Tensors;

namespace Kernels.Engine;

/// <summary>
/// A row-major matrix of 16-bit elements (f16 or bf16 bits) as a kernel argument: the engine's activation operand
/// X (N×K) and the dense producer's weights W (M×K). Carries the views the CPU accelerator reads, the device address
/// <c>cp.async</c> needs on a GPU, and whether 16-byte copies are legal (<see cref="Aligned"/>).
/// </summary>
public readonly struct Matrix16
{
    /// <summary>Elements as 16-bit words.</summary>
    public readonly ArrayView<ushort> Halves;
    /// <summary>The same memory as 32-bit words (for 16-byte copies; only used when <see cref="Aligned"/> is 1).</summary>
    public readonly ArrayView<uint> Words;
    /// <summary>Device address of element 0.</summary>
    public readonly ulong Address;
    /// <summary>Rows.</summary>
    public readonly int Rows;
    /// <summary>Columns (the reduction dimension K).</summary>
    public readonly int Columns;
    /// <summary>Elements between the starts of consecutive rows.</summary>
    public readonly int RowStride;
    /// <summary>1 when the base is 16-byte aligned and <see cref="RowStride"/> and <see cref="Columns"/> are multiples of 8, so every 8-element chunk is one aligned 16-byte copy; else 0 (scalar loads).</summary>
    public readonly int Aligned;

    private Matrix16(ArrayView<ushort> halves, ArrayView<uint> words, ulong address, int rows, int columns, int rowStride, int aligned)
    {
        Halves = halves;
        Words = words;
        Address = address;
        Rows = rows;
        Columns = columns;
        RowStride = rowStride;
        Aligned = aligned;
    }

    /// <summary>
    /// Describes the dense row-major rows × columns matrix stored in <paramref name="view"/> (16-bit elements).
    /// <paramref name="forceScalar"/> disables the 16-byte path (tests use it to cover both).
    /// </summary>
    public static Matrix16 FromView<T>(ArrayView<T> view, int rows, int columns, bool forceScalar = false) where T : unmanaged
    {
        if (System.Runtime.CompilerServices.Unsafe.SizeOf<T>() != 2)
            throw new ArgumentException($"Matrix16 needs a 16-bit element type, not {typeof(T).Name}.", nameof(view));
        var halves = view.Cast<ushort>();
        ulong address = halves.Length > 0 ? (ulong)halves.LoadEffectiveAddressAsPtr().ToInt64() : 0UL;
        bool aligned = !forceScalar && address % 16 == 0 && columns % 8 == 0 && halves.Length % 2 == 0;
        var words = aligned ? halves.Cast<uint>() : halves.SubView(0, 0).Cast<uint>();
        return new Matrix16(halves, words, address, rows, columns, columns, aligned ? 1 : 0);
    }

    /// <summary>Describes a dense 2-D device tensor span of 16-bit elements.</summary>
    public static Matrix16 From<T>(ReadOnlyDeviceTensorSpan<T> span, bool forceScalar = false) where T : unmanaged =>
        FromView(span.View.AsContiguous().SubView(0, span.FlattenedLength), (int)span.Lengths[0], (int)span.Lengths[1], forceScalar);
}
