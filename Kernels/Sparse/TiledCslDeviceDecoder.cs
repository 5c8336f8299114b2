using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;
using Kernels.Runtime;
using Kernels.Tensors;

namespace Kernels.Sparse;

/// <summary>
/// Tiled-CSL to a dense row-major M×K tensor on the device, exactly like <see cref="TiledCslDecoder"/> on the host: the
/// destination is zeroed, then each group scatters the words of its tiles. The dense path of <see cref="SpMM"/> uses
/// it to build the matrix's cached dense copy.
/// </summary>
public static class TiledCslDeviceDecoder
{
    /// <summary>
    /// Decodes <paramref name="matrix"/> into <paramref name="dense"/> (dense M×K; <see cref="ILGPU.Half"/> for fp16
    /// values, <see cref="BFloat16"/> for bf16). Asynchronous on the matrix's device stream.
    /// </summary>
    public static void Decode<T>(TiledCslMatrix matrix, DeviceTensorSpan<T> dense) where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(matrix);
        TiledCslEncoder.RequireValueType<T>(matrix.ValueType, nameof(dense));
        Require.Live(dense.AsReadOnly(), nameof(dense));
        RequireShape(matrix, dense.Device, dense.Lengths, dense.IsDense, nameof(dense));
        Launch(matrix, dense.View.AsContiguous().Cast<ushort>());
    }

    internal static void Decode(TiledCslMatrix matrix, DeviceTensorSpan<ushort> dense)
    {
        Require.Live(dense.AsReadOnly(), nameof(dense));
        RequireShape(matrix, dense.Device, dense.Lengths, dense.IsDense, nameof(dense));
        Launch(matrix, dense.View.AsContiguous());
    }

    private static void RequireShape(TiledCslMatrix matrix, Runtime.ComputeDevice device, ReadOnlySpan<nint> lengths, bool isDense, string name)
    {
        Require.SameDevice(matrix.Device, device, name);
        Require.Shape(lengths, [matrix.Rows, matrix.Columns], name);
        if (!isDense) throw new ArgumentException($"{name} must be a dense (contiguous) view.", name);
        matrix.ThrowIfDisposed();
    }

    private static void Launch(TiledCslMatrix matrix, ArrayView<ushort> dense)
    {
        var device = matrix.Device;
        dense.MemSetToZero(device.Stream);
        int groupSize = device.IsCuda ? 256 : device.Accelerator.WarpSize;
        int groups = device.IsCuda ? Math.Min(matrix.Shape.TileCount, device.Accelerator.NumMultiprocessors * 8) : Math.Min(matrix.Shape.TileCount, 4);
        var kernel = device.GetKernel(typeof(TiledCslDeviceDecoder),
            acc => acc.LoadCatalogKernel<ArrayView<uint>, ArrayView<int>, ArrayView<ushort>, int, int, int>(DecodeKernel));
        kernel(device.Stream, new KernelConfig(groups, groupSize),
            matrix.WordsTensor.View.AsContiguous(), matrix.OffsetsTensor.View.AsContiguous(), dense, matrix.Rows, matrix.Columns, matrix.Shape.TileColumnCount);
    }

    /// <summary>One group per tile (grid-stride over tiles), threads stride over the tile's words.</summary>
    internal static void DecodeKernel(ArrayView<uint> words, ArrayView<int> offsets, ArrayView<ushort> dense, int rows, int columns, int tileColumns)
    {
        int tiles = (int)offsets.Length - TiledCsl.ExtraOffsets;
        for (int t = Grid.IdxX; t < tiles; t += Grid.DimX)
        {
            int i = t / tileColumns, j = t - i * tileColumns;
            long end = (long)offsets[t + 1] * 4;
            for (long p = (long)offsets[t] * 4 + Group.IdxX; p < end; p += Group.DimX)
            {
                uint word = words[p];
                int loc = (int)(word >> 16);
                int lr = loc >> 6;
                int r = i * TiledCsl.TileRows + lr;
                int c = j * TiledCsl.TileColumns + ((loc & 63) ^ ((lr & 7) << 3));
                if (r < rows && c < columns) dense[(long)r * columns + c] = (ushort)word;
            }
        }
    }
}
