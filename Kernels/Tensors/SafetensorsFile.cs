using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Kernels.Tensors;

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

    /// <summary>
    /// Reads and checks the header (offsets inside the file, sizes consistent with dtype and shape). A file that is not
    /// a valid safetensors file — too short, a header that is not JSON, an entry without integer shape or offsets, a
    /// non-string metadata value — throws <see cref="InvalidDataException"/> naming the file and the tensor or key.
    /// </summary>
    public static SafetensorsFile Open(string path)
    {
        using var stream = File.OpenRead(path);
        if (stream.Length < 8)
            throw new InvalidDataException($"{path}: {stream.Length} bytes is too short for a safetensors file (it starts with an 8-byte header length).");
        Span<byte> len = stackalloc byte[8];
        stream.ReadExactly(len);
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(len);
        if (headerLength > (ulong)Math.Min(stream.Length - 8, 100_000_000))
            throw new InvalidDataException($"{path}: header length {headerLength} exceeds the file.");
        var header = new byte[headerLength];
        stream.ReadExactly(header);
        long dataStart = 8 + (long)headerLength, dataLength = stream.Length - dataStart;
        JsonNode? parsed;
        try { parsed = JsonNode.Parse(header); }
        catch (JsonException ex) { throw new InvalidDataException($"{path}: the header is not valid JSON ({ex.Message}).", ex); }
        var root = parsed as JsonObject ?? throw new InvalidDataException($"{path}: the header is not a JSON object.");
        var entries = new Dictionary<string, SafetensorsEntry>();
        var metadata = new Dictionary<string, string>();
        foreach (var (name, node) in root)
        {
            if (name == "__metadata__")
            {
                var meta = node as JsonObject ?? throw new InvalidDataException($"{path}: __metadata__ is not a JSON object.");
                foreach (var (k, v) in meta)
                    metadata[k] = v is JsonValue value && value.TryGetValue<string>(out var text) ? text
                        : throw new InvalidDataException($"{path}: __metadata__ key '{k}' is not a string (got {v?.ToJsonString() ?? "null"}).");
                continue;
            }
            var o = node as JsonObject ?? throw new InvalidDataException($"{path}: entry '{name}' is not an object.");
            string dtype = o["dtype"] is JsonValue d && d.TryGetValue<string>(out var dt) ? dt
                : throw new InvalidDataException($"{path}: '{name}' has no dtype string.");
            if (!IsKnown(dtype)) throw new InvalidDataException($"{path}: '{name}' has dtype '{dtype}', which is not supported.");
            var shape = Integers(o["shape"], path, name, "shape", count: null);
            var offsets = Integers(o["data_offsets"], path, name, "data_offsets", count: 2);
            long elements;
            try { elements = shape.Aggregate(1L, (a, b) => checked(a * b)); }
            catch (OverflowException) { throw new InvalidDataException($"{path}: '{name}' has shape [{string.Join(", ", shape)}], more elements than a long holds."); }
            var e = new SafetensorsEntry(name, dtype, shape, offsets[0], offsets[1]);
            if (shape.Any(l => l < 0) || e.Begin < 0 || e.End < e.Begin || e.End > dataLength)
                throw new InvalidDataException($"{path}: '{name}' has offsets [{e.Begin}, {e.End}) outside the {dataLength}-byte data section.");
            if (elements > long.MaxValue / 8 || e.End - e.Begin != elements * SizeOf(dtype))
                throw new InvalidDataException($"{path}: '{name}' spans {e.End - e.Begin} bytes but {dtype}[{string.Join(", ", shape)}] needs {elements * SizeOf(dtype)}.");
            entries[name] = e;
        }
        return new SafetensorsFile(path, dataStart, entries, metadata);
    }

    private static bool IsKnown(string dtype)
    {
        try { SizeOf(dtype); return true; }
        catch (NotSupportedException) { return false; }
    }

    // A JSON array of integers (exactly count of them when given); anything else — a fraction, a string, a missing
    // array — is a corrupt header.
    private static long[] Integers(JsonNode? node, string path, string name, string key, int? count)
    {
        if (node is not JsonArray array || (count is int c && array.Count != c))
            throw new InvalidDataException($"{path}: '{name}' has no {key} array{(count is int n ? $" of {n} integers" : "")} (got {node?.ToJsonString() ?? "nothing"}).");
        var result = new long[array.Count];
        for (int i = 0; i < array.Count; i++)
            result[i] = array[i] is JsonValue v && v.TryGetValue<long>(out var l) ? l
                : throw new InvalidDataException($"{path}: '{name}' {key}[{i}] is {array[i]?.ToJsonString() ?? "null"}, not an integer.");
        return result;
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

    /// <summary>Reads a tensor's raw little-endian bytes, whatever its dtype.</summary>
    public byte[] ReadBytes(string name)
    {
        if (!Entries.TryGetValue(name, out var e)) throw new KeyNotFoundException($"{Path}: no tensor named '{name}'.");
        var result = new byte[e.End - e.Begin];
        using var stream = File.OpenRead(Path);
        stream.Position = dataStart + e.Begin;
        stream.ReadExactly(result);
        return result;
    }

    /// <summary>
    /// The rank of a dtype in the Rust <c>safetensors</c> crate's <c>Dtype</c> enum (BOOL &lt; U8 &lt; I8 &lt; I16 &lt; U16
    /// &lt; F16 &lt; BF16 &lt; I32 &lt; U32 &lt; F32 &lt; F64 &lt; I64 &lt; U64, the order of increasing alignment).
    /// </summary>
    public static int DTypeOrder(string dtype) => dtype switch
    {
        "BOOL" => 0, "U8" => 1, "I8" => 2, "I16" => 3, "U16" => 4, "F16" => 5, "BF16" => 6,
        "I32" => 7, "U32" => 8, "F32" => 9, "F64" => 10, "I64" => 11, "U64" => 12,
        _ => throw new NotSupportedException($"safetensors dtype '{dtype}' is not supported."),
    };

    /// <summary>
    /// Writes tensors the way Hugging Face's <c>safetensors.torch.save_file</c> does (PEFT's and transformers'
    /// <c>save_pretrained</c>), so a file they wrote is reproduced byte for byte: tensors sorted by descending dtype
    /// (<see cref="DTypeOrder"/>) and then by name (ordinal), packed without gaps, the header compact JSON with
    /// "__metadata__" first, padded with spaces to a multiple of 8 bytes (the crate's <c>prepare</c>).
    /// </summary>
    /// <param name="path">File to create.</param>
    /// <param name="tensors">Tensors in any order (names unique).</param>
    /// <param name="metadata">String metadata; transformers and PEFT write {"format": "pt"}.</param>
    public static void WriteSorted(string path, IEnumerable<Tensor> tensors, IReadOnlyDictionary<string, string>? metadata)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        var list = tensors.ToList();
        var duplicate = list.GroupBy(t => t.Name, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null) throw new ArgumentException($"tensor name '{duplicate.Key}' appears {duplicate.Count()} times.", nameof(tensors));
        list.Sort((a, b) =>
        {
            int byType = DTypeOrder(b.DType).CompareTo(DTypeOrder(a.DType));
            return byType != 0 ? byType : string.CompareOrdinal(a.Name, b.Name);
        });
        Write(path, list, metadata);
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
        // serde_json (the Rust crate's writer) escapes only quotes, backslashes and control characters.
        var header = Encoding.UTF8.GetBytes(root.ToJsonString(new JsonSerializerOptions
        {
            WriteIndented = false,
            Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        }));
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
