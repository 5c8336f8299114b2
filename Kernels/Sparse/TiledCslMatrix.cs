using ILGPU;
using ILGPU.Runtime;
using Kernels.Runtime;
using Kernels.Tensors;

namespace Kernels.Sparse;

/// <summary>
/// A Tiled-CSL weight matrix on a device: the word array and the T + 2 tile offsets (Flash-LLM's <c>NZWeights</c> and
/// <c>TileOffsets</c>, byte for byte), its true shape M×K, padded shape, value type (fp16 or bf16) and statistics. Built
/// only from validated arrays, so kernels can trust every offset and location. Owns its device buffers (and, once the
/// dense path of <see cref="SpMM"/> has needed it, a cached dense copy; see <see cref="DenseCache"/>).
/// </summary>
public sealed class TiledCslMatrix : IDisposable
{
    private DeviceTensor<uint>? words;
    private DeviceTensor<int>? tileOffsets;
    private IDisposable? dense;

    private TiledCslMatrix(ComputeDevice device, TiledCslArrays host)
    {
        Device = device;
        Rows = host.Rows;
        Columns = host.Columns;
        ValueType = host.ValueType;
        NonzeroCount = host.NonzeroCount;
        WordCount = host.WordCount;
        MaxTileWords = host.MaxTileWords;
        if (host.WordCount > 0) words = device.Upload(host.Words, host.Words.Length);
        else
        {
            // ILGPU allocates nothing of length zero; an all-zero matrix keeps one zero vector no offset points at.
            words = device.Allocate<uint>(TiledCsl.WordsPerVector);
            words.Span.Clear();
        }
        try { tileOffsets = device.Upload(host.TileOffsets, host.TileOffsets.Length); }
        catch { words.Dispose(); throw; }
    }

    /// <summary>Uploads host arrays (already valid by construction).</summary>
    public static TiledCslMatrix Upload(ComputeDevice device, TiledCslArrays host)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(host);
        return new TiledCslMatrix(device, host);
    }

    /// <summary>Validates Flash-LLM arrays (see <see cref="TiledCslValidator"/>) and uploads them; throws before allocating anything if they are corrupt.</summary>
    public static TiledCslMatrix FromFlashLlm(ComputeDevice device, ReadOnlySpan<uint> words, ReadOnlySpan<int> tileOffsets, int rows, int columns,
        ElementType valueType = ElementType.Float16) =>
        Upload(device, TiledCslArrays.FromFlashLlm(words, tileOffsets, rows, columns, valueType));

    /// <summary>Encodes dense host weights (see <see cref="TiledCslEncoder.Encode{T}(ReadOnlySpan{T}, int, int, double?, TiledCslWordOrder)"/>) and uploads the result.</summary>
    public static TiledCslMatrix Encode<T>(ComputeDevice device, ReadOnlySpan<T> dense, int rows, int columns, double? targetSparsity = null,
        TiledCslWordOrder wordOrder = TiledCslWordOrder.RowMajor) where T : unmanaged =>
        Upload(device, TiledCslEncoder.Encode(dense, rows, columns, targetSparsity, wordOrder));

    /// <summary>Downloads the two arrays in Flash-LLM's layout (waits for the device's stream).</summary>
    public (uint[] Words, int[] TileOffsets) ToFlashLlm()
    {
        var w = WordsTensor.ToArray();
        return (WordCount == w.Length ? w : w[..(int)WordCount], OffsetsTensor.ToArray());
    }

    /// <summary>Downloads the matrix as host arrays.</summary>
    public TiledCslArrays ToHost()
    {
        var (w, o) = ToFlashLlm();
        return new TiledCslArrays(w, o, Rows, Columns, ValueType, NonzeroCount, MaxTileWords);
    }

    /// <summary>The device that holds the buffers.</summary>
    public ComputeDevice Device { get; }

    /// <summary>True number of rows M (output features).</summary>
    public int Rows { get; }

    /// <summary>True number of columns K (input features).</summary>
    public int Columns { get; }

    /// <summary>Tile rows: ⌈M / 128⌉.</summary>
    public int TileRowCount => TiledCsl.TilesAlong(Rows, TiledCsl.TileRows);

    /// <summary>Tile columns: ⌈K / 64⌉.</summary>
    public int TileColumnCount => TiledCsl.TilesAlong(Columns, TiledCsl.TileColumns);

    /// <summary>Number of tiles T.</summary>
    public int TileCount => TileRowCount * TileColumnCount;

    /// <summary>M padded up to a multiple of 128.</summary>
    public int PaddedRows => TileRowCount * TiledCsl.TileRows;

    /// <summary>K padded up to a multiple of 64.</summary>
    public int PaddedColumns => TileColumnCount * TiledCsl.TileColumns;

    /// <summary>Element type of the values: <see cref="ElementType.Float16"/> or <see cref="ElementType.BFloat16"/>.</summary>
    public ElementType ValueType { get; }

    /// <summary>Stored nonzeros (pads excluded).</summary>
    public long NonzeroCount { get; }

    /// <summary>Stored words, pads included.</summary>
    public long WordCount { get; }

    /// <summary>The most words any one tile holds (pads included), at most 8192.</summary>
    public int MaxTileWords { get; }

    /// <summary>Density of the densest tile: <see cref="MaxTileWords"/> / 8192.</summary>
    public double WorstTileDensity => MaxTileWords / (double)TiledCsl.TileElements;

    /// <summary>Fraction of zeros in the true M×K matrix.</summary>
    public double Sparsity => 1.0 - NonzeroCount / ((double)Rows * Columns);

    /// <summary>Bytes of the format on the device: 4 per word plus 4 per offset (the compulsory weight traffic of the sparse path).</summary>
    public long ByteLength => 4L * WordCount + 4L * (TileCount + TiledCsl.ExtraOffsets);

    /// <summary>True once the dense path has materialized a dense copy of the weights on the device (2·M·K bytes).</summary>
    public bool DenseCache => dense is not null;

    /// <summary>Frees the cached dense copy, if any (the next dense-path call decodes again).</summary>
    public void DropDenseCache()
    {
        dense?.Dispose();
        dense = null;
    }

    /// <summary>Throws <see cref="ObjectDisposedException"/> once <see cref="Dispose"/> has run (operations call it before launching).</summary>
    internal void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(words is null, this);

    internal DeviceTensor<uint> WordsTensor => words ?? throw new ObjectDisposedException(nameof(TiledCslMatrix));

    internal DeviceTensor<int> OffsetsTensor => tileOffsets ?? throw new ObjectDisposedException(nameof(TiledCslMatrix));

    /// <summary>
    /// The dense M×K copy of the weights (<typeparamref name="T"/>: the device type of the value type), decoded on the device on first use and kept until
    /// <see cref="DropDenseCache"/> or <see cref="Dispose"/>. Enqueued on the device's stream; no host synchronization.
    /// </summary>
    internal DeviceTensor<T> DenseWeights<T>() where T : unmanaged
    {
        if (dense is DeviceTensor<T> cached) return cached;
        var d = Device.Allocate<T>(Rows, Columns);
        try { TiledCslDeviceDecoder.Decode(this, d.Span); }
        catch { d.Dispose(); throw; }
        dense = d;
        return d;
    }

    /// <summary>Releases the device buffers.</summary>
    public void Dispose()
    {
        words?.Dispose();
        tileOffsets?.Dispose();
        dense?.Dispose();
        words = null;
        tileOffsets = null;
        dense = null;
    }

    /// <inheritdoc />
    public override string ToString() =>
        $"TiledCslMatrix {Rows}×{Columns} {ElementTypes.Name(ValueType)} on {Device.Name}, {NonzeroCount} nonzeros ({Sparsity:P1} sparse), worst tile {WorstTileDensity:P1}";
}
