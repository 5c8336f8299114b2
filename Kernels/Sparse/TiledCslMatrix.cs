using ILGPU;
using ILGPU.Runtime;
using Kernels.Runtime;
using Kernels.Tensors;

namespace Kernels.Sparse;

/// <summary>
/// A Tiled-CSL weight matrix on a device: the word array and the T + 2 tile offsets (Flash-LLM's <c>NZWeights</c> and
/// <c>TileOffsets</c>, byte for byte) and its <see cref="Shape"/>: true shape M×K, value type (fp16 or bf16) and statistics. Built
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
        Shape = host.Shape;
        if (host.Shape.WordCount > 0) words = device.Upload(host.Words, host.Words.Length);
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
        return (Shape.WordCount == w.Length ? w : w[..(int)Shape.WordCount], OffsetsTensor.ToArray());
    }

    /// <summary>Downloads the matrix as host arrays.</summary>
    public TiledCslArrays ToHost()
    {
        var (w, o) = ToFlashLlm();
        return new TiledCslArrays(w, o, Rows, Columns, ValueType, Shape.NonzeroCount, Shape.MaxTileWords);
    }

    /// <summary>The device that holds the buffers.</summary>
    public ComputeDevice Device { get; }

    /// <summary>Shape, value type and statistics (tile counts, padded shape, sparsity, worst tile, bytes).</summary>
    public TiledCslShape Shape { get; }

    /// <summary>True number of rows M (output features).</summary>
    public int Rows => Shape.Rows;

    /// <summary>True number of columns K (input features).</summary>
    public int Columns => Shape.Columns;

    /// <summary>Element type of the values: <see cref="ElementType.Float16"/> or <see cref="ElementType.BFloat16"/>.</summary>
    public ElementType ValueType => Shape.ValueType;

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
        $"TiledCslMatrix {Shape} on {Device.Name}";
}
