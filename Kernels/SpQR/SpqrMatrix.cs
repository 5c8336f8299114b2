using ILGPU;
using Kernels.Runtime;
using Kernels.Tensors;

namespace Kernels.SpQR;

/// <summary>
/// A validated SpQR matrix resident on a device: owns its four buffers, carries its shape. Built from a
/// <see cref="SpqrPacked"/> (which validated the data), so kernels never see an out-of-range offset, column or
/// permutation entry. Immutable after construction.
/// </summary>
public sealed class SpqrMatrix : IDisposable
{
    private readonly DeviceTensor<ulong> denseWeights;
    private readonly DeviceTensor<int> rowOffsets;
    private readonly DeviceTensor<uint> colVals;
    private readonly DeviceTensor<uint> permutation;

    /// <summary>Uploads a packed matrix to <paramref name="device"/>.</summary>
    public SpqrMatrix(ComputeDevice device, SpqrPacked packed)
    {
        ArgumentNullException.ThrowIfNull(device);
        Packed = packed ?? throw new ArgumentNullException(nameof(packed));
        Device = device;
        // The permutation is always materialized and padded to 8 pairs per tile column, so the GEMV reads each tile's
        // 16 entries with two 16-byte loads and never needs an identity special case.
        var perm = new uint[packed.TileColumns * 8];
        if (packed.InPerm.Length > 0) packed.InPerm.CopyTo(perm, 0);
        else for (int j = 0; j < packed.Columns; j++) perm[j >> 1] |= (uint)j << (16 * (j & 1));
        var allocated = new List<IDisposable>();
        try
        {
            denseWeights = Track(device.Upload<ulong>(packed.DenseWeights), allocated);
            rowOffsets = Track(device.Upload<int>(packed.RowOffsets), allocated);
            // ILGPU cannot hold an empty buffer; a matrix without outliers keeps one unread word.
            colVals = Track(device.Upload<uint>(packed.ColVals.Length > 0 ? packed.ColVals : [0u]), allocated);
            permutation = Track(device.Upload<uint>(perm), allocated);
        }
        catch
        {
            foreach (var d in allocated) d.Dispose();
            throw;
        }
    }

    private static T Track<T>(T item, List<IDisposable> list) where T : IDisposable
    {
        list.Add(item);
        return item;
    }

    /// <summary>The device holding the buffers.</summary>
    public ComputeDevice Device { get; }

    /// <summary>The host data this matrix was built from (for references and checkpoints).</summary>
    public SpqrPacked Packed { get; }

    /// <summary>m.</summary>
    public int Rows => Packed.Rows;

    /// <summary>n.</summary>
    public int Columns => Packed.Columns;

    /// <summary>The outlier layout.</summary>
    public SpqrSparseLayout Layout => Packed.Layout;

    /// <summary>Compressed bytes a GEMV reads (tile words, offsets, outliers, permutation).</summary>
    public long CompressedBytes => Packed.CompressedBytes;

    /// <summary>Storage cost per weight in bits.</summary>
    public double BitsPerWeight => Packed.BitsPerWeight;

    private readonly object scratchGate = new();
    private readonly List<DeviceTensor<ILGPU.Half>> scratches = [];

    /// <summary>
    /// Leases a buffer of at least <paramref name="halves"/> fp16 elements for activations gathered into packed column
    /// order. The lease is a lock held across the gather and the GEMM that reads it, so concurrent callers on one matrix
    /// cannot overwrite each other's gathered activations; calls are ordered on the device stream, so one buffer serves
    /// every call. A larger request allocates a new buffer and keeps the old alive until <see cref="Dispose"/> (work
    /// already enqueued may still read it).
    /// </summary>
    internal ScratchLease<ILGPU.Half> RentGatherScratch(long halves)
    {
        ScratchLease<ILGPU.Half>.Enter(scratchGate, "The SpQR gather buffer");
        try
        {
            ThrowIfDisposed();
            if (scratches.Count == 0 || scratches[^1].FlattenedLength < halves)
                scratches.Add(Device.Allocate<ILGPU.Half>((nint)halves));
            return new ScratchLease<ILGPU.Half>(scratchGate, scratches[^1].Span.View.AsContiguous().SubView(0, halves), Device);
        }
        catch
        {
            Monitor.Exit(scratchGate);
            throw;
        }
    }

    private bool disposed;

    /// <summary>Throws <see cref="ObjectDisposedException"/> once <see cref="Dispose"/> has run (operations call it before launching).</summary>
    internal void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(disposed, this);

    internal ArrayView<ulong> DenseWeights => denseWeights.Span.View.AsContiguous();
    internal ArrayView<int> RowOffsets => rowOffsets.Span.View.AsContiguous();
    internal ArrayView<uint> ColVals => colVals.Span.View.AsContiguous();
    internal ArrayView<uint> Permutation => permutation.Span.View.AsContiguous();

    /// <summary>Releases the device buffers.</summary>
    public void Dispose()
    {
        disposed = true;
        denseWeights.Dispose();
        rowOffsets.Dispose();
        colVals.Dispose();
        permutation.Dispose();
        lock (scratchGate)
        {
            foreach (var t in scratches) t.Dispose();
            scratches.Clear();
        }
    }

    /// <inheritdoc />
    public override string ToString() => $"SpqrMatrix {Rows}×{Columns} ({Layout}, {Packed.OutlierCount} outliers, {BitsPerWeight:F3} bits/weight) on {Device.Name}";
}
