using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Kernels.SpQR;

/// <summary>One tensor entry of a safetensors header.</summary>
/// <param name="Name">Tensor name.</param>
/// <param name="DType">safetensors dtype string: I64, I32, I16, U8, F16, F32...</param>
/// <param name="Shape">Lengths.</param>
/// <param name="Begin">First byte, relative to the data section.</param>
/// <param name="End">One past the last byte, relative to the data section.</param>
public sealed record SafetensorsEntry(string Name, string DType, long[] Shape, long Begin, long End)
{
    /// <summary>Number of elements.</summary>
    public long ElementCount => Shape.Aggregate(1L, (a, b) => checked(a * b));
}

/// <summary>
/// A minimal safetensors reader and writer: an 8-byte little-endian header length, a UTF-8 JSON header mapping names
/// to {dtype, shape, data_offsets} (plus an optional string map "__metadata__"), then the raw little-endian tensors.
/// Tensors are read on demand from the file, so large checkpoints are not loaded whole.
/// </summary>
public sealed class SafetensorsFile
{
    private readonly long dataStart;

    private SafetensorsFile(string path, long dataStart, Dictionary<string, SafetensorsEntry> entries, Dictionary<string, string> metadata)
    {
        Path = path;
        this.dataStart = dataStart;
        Entries = entries;
        Metadata = metadata;
    }

    /// <summary>The file.</summary>
    public string Path { get; }

    /// <summary>The tensors by name.</summary>
    public IReadOnlyDictionary<string, SafetensorsEntry> Entries { get; }

    /// <summary>The "__metadata__" strings (empty when absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Element size of a dtype.</summary>
    public static int SizeOf(string dtype) => dtype switch
    {
        "I64" or "U64" or "F64" => 8,
        "I32" or "U32" or "F32" => 4,
        "I16" or "U16" or "F16" or "BF16" => 2,
        "I8" or "U8" or "BOOL" => 1,
        _ => throw new NotSupportedException($"safetensors dtype '{dtype}' is not supported."),
    };

    /// <summary>Reads and checks the header (offsets inside the file, sizes consistent with dtype and shape).</summary>
    public static SafetensorsFile Open(string path)
    {
        using var stream = File.OpenRead(path);
        Span<byte> len = stackalloc byte[8];
        stream.ReadExactly(len);
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(len);
        if (headerLength > (ulong)Math.Min(stream.Length - 8, 100_000_000))
            throw new InvalidDataException($"{path}: header length {headerLength} exceeds the file.");
        var header = new byte[headerLength];
        stream.ReadExactly(header);
        long dataStart = 8 + (long)headerLength, dataLength = stream.Length - dataStart;
        var root = JsonNode.Parse(header) as JsonObject ?? throw new InvalidDataException($"{path}: the header is not a JSON object.");
        var entries = new Dictionary<string, SafetensorsEntry>();
        var metadata = new Dictionary<string, string>();
        foreach (var (name, node) in root)
        {
            if (name == "__metadata__")
            {
                if (node is JsonObject meta)
                    foreach (var (k, v) in meta) metadata[k] = v?.GetValue<string>() ?? "";
                continue;
            }
            var o = node as JsonObject ?? throw new InvalidDataException($"{path}: entry '{name}' is not an object.");
            string dtype = o["dtype"]?.GetValue<string>() ?? throw new InvalidDataException($"{path}: '{name}' has no dtype.");
            var shape = (o["shape"] as JsonArray ?? throw new InvalidDataException($"{path}: '{name}' has no shape."))
                .Select(x => x!.GetValue<long>()).ToArray();
            var offsets = o["data_offsets"] as JsonArray ?? throw new InvalidDataException($"{path}: '{name}' has no data_offsets.");
            var e = new SafetensorsEntry(name, dtype, shape, offsets[0]!.GetValue<long>(), offsets[1]!.GetValue<long>());
            if (shape.Any(l => l < 0) || e.Begin < 0 || e.End < e.Begin || e.End > dataLength)
                throw new InvalidDataException($"{path}: '{name}' has offsets [{e.Begin}, {e.End}) outside the {dataLength}-byte data section.");
            if (e.End - e.Begin != e.ElementCount * SizeOf(dtype))
                throw new InvalidDataException($"{path}: '{name}' spans {e.End - e.Begin} bytes but {dtype}[{string.Join(", ", shape)}] needs {e.ElementCount * SizeOf(dtype)}.");
            entries[name] = e;
        }
        return new SafetensorsFile(path, dataStart, entries, metadata);
    }

    /// <summary>Reads a tensor's elements as <typeparamref name="T"/> (its size must match the dtype's).</summary>
    public T[] Read<T>(string name) where T : unmanaged
    {
        if (!Entries.TryGetValue(name, out var e)) throw new KeyNotFoundException($"{Path}: no tensor named '{name}'.");
        if (SizeOf(e.DType) != Marshal.SizeOf<T>())
            throw new InvalidDataException($"{Path}: '{name}' is {e.DType}, not readable as {typeof(T).Name}.");
        var result = new T[e.ElementCount];
        using var stream = File.OpenRead(Path);
        stream.Position = dataStart + e.Begin;
        stream.ReadExactly(MemoryMarshal.AsBytes(result.AsSpan()));
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("safetensors data is little-endian.");
        return result;
    }

    /// <summary>A tensor to write.</summary>
    /// <param name="Name">Tensor name.</param>
    /// <param name="DType">safetensors dtype string.</param>
    /// <param name="Shape">Lengths.</param>
    /// <param name="Data">Little-endian element bytes.</param>
    public sealed record Tensor(string Name, string DType, long[] Shape, byte[] Data);

    /// <summary>Writes tensors (in the given order, 8-byte aligned) and string metadata.</summary>
    public static void Write(string path, IEnumerable<Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var list = tensors.ToList();
        var root = new JsonObject();
        if (metadata is { Count: > 0 })
        {
            var meta = new JsonObject();
            foreach (var (k, v) in metadata) meta[k] = v;
            root["__metadata__"] = meta;
        }
        long offset = 0;
        foreach (var t in list)
        {
            long count = t.Shape.Aggregate(1L, (a, b) => a * b);
            if (t.Data.Length != count * SizeOf(t.DType))
                throw new ArgumentException($"tensor '{t.Name}': {t.Data.Length} bytes for {t.DType}[{string.Join(", ", t.Shape)}].", nameof(tensors));
            root[t.Name] = new JsonObject
            {
                ["dtype"] = t.DType,
                ["shape"] = new JsonArray(t.Shape.Select(l => (JsonNode)JsonValue.Create(l)).ToArray()),
                ["data_offsets"] = new JsonArray(offset, offset + t.Data.Length),
            };
            offset += t.Data.Length;
        }
        var header = Encoding.UTF8.GetBytes(root.ToJsonString(new JsonSerializerOptions { WriteIndented = false }));
        int pad = (8 - header.Length % 8) % 8; // the format pads the header with spaces so the data is 8-byte aligned
        using var stream = File.Create(path);
        Span<byte> len = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)(header.Length + pad));
        stream.Write(len);
        stream.Write(header);
        for (int i = 0; i < pad; i++) stream.WriteByte((byte)' ');
        foreach (var t in list) stream.Write(t.Data);
    }
}
