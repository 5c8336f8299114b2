using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Kernels.Runtime;
using Kernels.Tensors;

namespace Kernels.Quantization;

/// <summary>
/// A bitsandbytes <c>QuantState</c> on the host with the quantized data, field for field as
/// <c>QuantState.as_dict()</c> gives it (docs/checkpoints.md §2): the 4-bit state of a <c>Params4bit</c> weight
/// (<see cref="QuantType"/> "nf4" or "fp4") or the 8-bit state of <c>quantize_blockwise</c> (<see cref="QuantType"/>
/// null). Converts to and from <see cref="BlockwiseQuantized"/> (<see cref="Upload"/>, <see cref="FromBlockwise"/>);
/// <see cref="BitsAndBytesCheckpoint"/> reads and writes the 4-bit state in Hugging Face safetensors files.
/// </summary>
public sealed class BitsAndBytesQuantState
{
    /// <summary>The quantized tensor's bytes: packed 4-bit codes (first element in the high nibble) or 8-bit codes.</summary>
    public required byte[] Data { get; init; }

    /// <summary>The quantized tensor's shape: [⌈n/2⌉, 1] for a 4-bit weight, the input's shape for 8-bit codes.</summary>
    public required long[] DataShape { get; init; }

    /// <summary>"nf4", "fp4", or null for 8-bit <c>quantize_blockwise</c>.</summary>
    public string? QuantType { get; init; }

    /// <summary>First-level block size.</summary>
    public required int BlockSize { get; init; }

    /// <summary>The dtype the data was quantized from: "float16", "bfloat16" or "float32".</summary>
    public required string DType { get; init; }

    /// <summary>The original shape (4-bit; null for 8-bit, whose <see cref="DataShape"/> is the shape).</summary>
    public long[]? Shape { get; init; }

    /// <summary>fp32 absmax per block (null when nested).</summary>
    public float[]? Absmax { get; init; }

    /// <summary>Nested absmax codes, one per block (null unless nested): bitsandbytes' <c>absmax</c> key then holds uint8.</summary>
    public byte[]? QuantizedAbsmax { get; init; }

    /// <summary>The code book values as stored (<c>quant_map</c>: 16 or 256 fp32).</summary>
    public required float[] QuantMap { get; init; }

    /// <summary>Second-level fp32 absmax (null unless nested).</summary>
    public float[]? NestedAbsmax { get; init; }

    /// <summary>Second-level block size: 256 for 4-bit weights, <see cref="BlockSize"/> for 8-bit <c>quantize_blockwise(nested=True)</c>.</summary>
    public int NestedBlockSize { get; init; }

    /// <summary>Second-level code book values as stored (256 fp32; null unless nested).</summary>
    public float[]? NestedQuantMap { get; init; }

    /// <summary>Second-level dtype ("float32").</summary>
    public string? NestedDType { get; init; }

    /// <summary>The mean subtracted before nested quantization (a Python float in the JSON; an fp32 value in practice).</summary>
    public double NestedOffset { get; init; }

    /// <summary>Where the state came from (file and module), for messages.</summary>
    public string Source { get; init; } = "quant state";

    /// <summary>True when absmax is nested (double quantized).</summary>
    public bool IsNested => QuantizedAbsmax is not null;

    /// <summary>Element count: the product of <see cref="Shape"/> (4-bit) or of <see cref="DataShape"/> (8-bit).</summary>
    public long Length => (QuantType is null ? DataShape : Shape ?? []).Aggregate(1L, (a, b) => checked(a * b));

    /// <summary>The library code book a bitsandbytes quant_type names (8-bit: the dynamic signed map).</summary>
    public static CodeBook BookFor(string? quantType) => quantType switch
    {
        "nf4" => CodeBook.NF4,
        "fp4" => CodeBook.FP4,
        null => CodeBook.DynamicSigned,
        _ => throw new ArgumentException($"quant_type '{quantType}' is not nf4, fp4 or null (8-bit).", nameof(quantType)),
    };

    /// <summary>
    /// Checks every length against the fields (see the exceptions) and uploads the state as a
    /// <see cref="BlockwiseQuantized"/>. The stored code books must be the library's (<see cref="CodeBook.NF4"/>,
    /// <see cref="CodeBook.FP4"/>, <see cref="CodeBook.DynamicSigned"/>) to within 4 ulp per entry (bitsandbytes
    /// regenerates the dynamic map at run time, so builds differ in the last bits; docs/bitsandbytes.md §1.1); the
    /// device decodes with the library's tables.
    /// </summary>
    /// <param name="device">Where the buffers go.</param>
    /// <exception cref="InvalidDataException">A length, dtype or code book does not match (names <see cref="Source"/>).</exception>
    /// <exception cref="NotSupportedException">
    /// A nested state whose second level is not 256-element blocks (8-bit <c>quantize_blockwise(nested=True)</c> with
    /// B ≠ 256): <see cref="BlockwiseQuantized"/>'s nested level is fixed at <see cref="BlockwiseQuantized.NestedBlockSize"/>.
    /// </exception>
    public BlockwiseQuantized Upload(ComputeDevice device)
    {
        ArgumentNullException.ThrowIfNull(device);
        var map = Validate();
        var elementType = DType switch
        {
            "float16" => ElementType.Float16,
            "bfloat16" => ElementType.BFloat16,
            _ => ElementType.Float32,
        };
        long n = Length;
        var buffers = new List<IDisposable>();
        try
        {
            var codes = Track(device.Upload<byte>(Data), buffers);
            if (!IsNested)
                return new BlockwiseQuantized(map, BlockSize, n, elementType, codes, Track(device.Upload<float>(Absmax!), buffers));
            return new BlockwiseQuantized(map, BlockSize, n, elementType, codes,
                Track(device.Upload<byte>(QuantizedAbsmax!), buffers), Track(device.Upload<float>(NestedAbsmax!), buffers),
                Track(device.Upload<float>([(float)NestedOffset]), buffers));
        }
        catch
        {
            foreach (var b in buffers) b.Dispose();
            throw;
        }
    }

    private static DeviceTensor<TE> Track<TE>(DeviceTensor<TE> t, List<IDisposable> list) where TE : unmanaged
    {
        list.Add(t);
        return t;
    }

    // Every consistency rule of the layout; returns the code book.
    internal CodeBook Validate()
    {
        string src = Source;
        if (QuantType is not (null or "nf4" or "fp4")) throw new InvalidDataException($"{src}: quant_type '{QuantType}' is not nf4 or fp4.");
        var map = BookFor(QuantType);
        if (BlockSize < Blockwise.MinBlockSize || BlockSize > Blockwise.MaxBlockSize || (BlockSize & (BlockSize - 1)) != 0)
            throw new InvalidDataException($"{src}: blocksize {BlockSize} is not a power of two in [{Blockwise.MinBlockSize}, {Blockwise.MaxBlockSize}].");
        if (DType is not ("float16" or "bfloat16" or "float32")) throw new InvalidDataException($"{src}: dtype '{DType}' is not float16, bfloat16 or float32.");
        if (Data is null || DataShape is null) throw new InvalidDataException($"{src}: no quantized data.");
        if (QuantType is not null && Shape is null) throw new InvalidDataException($"{src}: a 4-bit state needs its shape.");
        if ((QuantType is null ? DataShape : Shape!).Any(l => l < 0)) throw new InvalidDataException($"{src}: a negative length in the shape.");
        long n;
        try { n = Length; }
        catch (OverflowException) { throw new InvalidDataException($"{src}: the shape has more elements than a long holds."); }
        long dataElements = DataShape.Aggregate(1L, (a, b) => a * b);
        long codeBytes = Blockwise.CodeBytes(n, map), blocks = Blockwise.BlockCount(n, BlockSize);
        if (Data.LongLength != codeBytes || dataElements != codeBytes)
            throw new InvalidDataException($"{src}: the weight has {Data.LongLength} bytes, shape [{string.Join(", ", DataShape)}], but {n} elements of {map.Bits}-bit codes need {codeBytes}.");
        RequireMap(QuantMap, map, "quant_map");
        if (!IsNested)
        {
            if (Absmax is null || Absmax.LongLength != blocks)
                throw new InvalidDataException($"{src}: absmax has {Absmax?.LongLength ?? 0} floats but {n} elements in blocks of {BlockSize} need {blocks}.");
            if (NestedAbsmax is not null || NestedQuantMap is not null)
                throw new InvalidDataException($"{src}: nested_absmax or nested_quant_map without uint8 absmax codes.");
            return map;
        }
        if (Absmax is not null) throw new InvalidDataException($"{src}: both fp32 absmax and nested absmax codes.");
        if (QuantizedAbsmax!.LongLength != blocks)
            throw new InvalidDataException($"{src}: absmax has {QuantizedAbsmax.LongLength} codes but {n} elements in blocks of {BlockSize} need {blocks}.");
        if (NestedDType != "float32") throw new InvalidDataException($"{src}: nested_dtype '{NestedDType}' is not float32.");
        if (NestedBlockSize < 1) throw new InvalidDataException($"{src}: nested_blocksize {NestedBlockSize} is not positive.");
        if (NestedQuantMap is null) throw new InvalidDataException($"{src}: nested state without nested_quant_map.");
        RequireMap(NestedQuantMap, CodeBook.DynamicSigned, "nested_quant_map");
        long nestedBlocks = (blocks + NestedBlockSize - 1) / NestedBlockSize;
        if (NestedAbsmax is null || NestedAbsmax.LongLength != nestedBlocks)
            throw new InvalidDataException($"{src}: nested_absmax has {NestedAbsmax?.LongLength ?? 0} floats but {blocks} blocks in nested blocks of {NestedBlockSize} need {nestedBlocks}.");
        if (!float.IsFinite((float)NestedOffset)) throw new InvalidDataException($"{src}: nested_offset {NestedOffset} is not a finite fp32 value.");
        if (NestedBlockSize != BlockwiseQuantized.NestedBlockSize)
            throw new NotSupportedException($"{src}: nested_blocksize is {NestedBlockSize}, but BlockwiseQuantized's nested level uses blocks of {BlockwiseQuantized.NestedBlockSize} " +
                "(bitsandbytes' 8-bit quantize_blockwise(nested=True) reuses the first level's block size; only B = 256 loads today).");
        return map;
    }

    private void RequireMap(float[]? stored, CodeBook book, string key)
    {
        var values = book.Values;
        if (stored is null || stored.Length != values.Length)
            throw new InvalidDataException($"{Source}: {key} has {stored?.Length ?? 0} values; the {book.Name} map has {values.Length}.");
        for (int i = 0; i < values.Length; i++)
        {
            float a = stored[i], b = values[i];
            bool same = a == b || (float.IsFinite(a) && Math.Sign(a) == Math.Sign(b)
                && Math.Abs(BitConverter.SingleToInt32Bits(a) - (long)BitConverter.SingleToInt32Bits(b)) <= 4);
            if (!same)
                throw new InvalidDataException($"{Source}: {key}[{i}] = {a:R} but the {book.Name} map has {b:R}; only bitsandbytes' own code books are supported.");
        }
    }

    /// <summary>
    /// Reads a quantized tensor back from the device into bitsandbytes' layout (waits for the device). The code books
    /// are written as bitsandbytes holds them: the library's values with −0 as +0 (bitsandbytes builds its FP4 table
    /// from the Python integer <c>-0</c>, which is +0).
    /// </summary>
    /// <param name="w">The quantized tensor (NF4 or FP4 for a 4-bit state; the dynamic signed map for 8-bit).</param>
    /// <param name="dtype">The dtype to record: "float16", "bfloat16" or "float32".</param>
    /// <param name="shape">4-bit: the weight's shape (product = w.Length). 8-bit: the codes' shape (null = [Length]).</param>
    public static BitsAndBytesQuantState FromBlockwise(BlockwiseQuantized w, string dtype, long[]? shape)
    {
        ArgumentNullException.ThrowIfNull(w);
        ArgumentNullException.ThrowIfNull(dtype);
        w.ThrowIfDisposed();
        string? quantType = w.Map == CodeBook.NF4 ? "nf4" : w.Map == CodeBook.FP4 ? "fp4" : w.Map == CodeBook.DynamicSigned ? null
            : throw new ArgumentException($"bitsandbytes stores NF4, FP4 or the dynamic signed map, not {w.Map.Name}.", nameof(w));
        if (dtype is not ("float16" or "bfloat16" or "float32")) throw new ArgumentException($"dtype '{dtype}' is not float16, bfloat16 or float32.", nameof(dtype));
        shape ??= quantType is null ? [w.Length] : throw new ArgumentNullException(nameof(shape), "A 4-bit state records the weight's shape.");
        if (shape.Any(l => l < 0) || shape.Aggregate(1L, (a, b) => a * b) != w.Length)
            throw new ArgumentException($"shape [{string.Join(", ", shape)}] does not hold {w.Length} elements.", nameof(shape));
        var state = new BitsAndBytesQuantState
        {
            Data = w.Codes.ToArray(),
            DataShape = quantType is null ? shape : [w.Codes.FlattenedLength, 1],
            QuantType = quantType,
            BlockSize = w.BlockSize,
            DType = dtype,
            Shape = quantType is null ? null : shape,
            Absmax = w.Absmax?.ToArray(),
            QuantizedAbsmax = w.NestedCodes?.ToArray(),
            QuantMap = PositiveZero(w.Map),
            NestedAbsmax = w.NestedAbsmax?.ToArray(),
            NestedBlockSize = w.IsNested ? BlockwiseQuantized.NestedBlockSize : 0,
            NestedQuantMap = w.IsNested ? PositiveZero(CodeBook.DynamicSigned) : null,
            NestedDType = w.IsNested ? "float32" : null,
            NestedOffset = w.IsNested ? w.NestedOffset!.ToArray()[0] : 0,
        };
        state.Validate();
        return state;
    }

    private static float[] PositiveZero(CodeBook book) => book.Values.ToArray().Select(v => v == 0 ? 0f : v).ToArray();
}

/// <summary>
/// bitsandbytes 4-bit weights in Hugging Face safetensors checkpoints (transformers' <c>save_pretrained</c> of a
/// <c>Linear4bit</c> model; docs/checkpoints.md §2). Per module <c>M</c>: <c>M.weight</c> (U8 [⌈n/2⌉, 1] packed codes),
/// <c>M.weight.absmax</c> (F32 [blocks], or U8 codes when nested), <c>M.weight.quant_map</c> (F32 [16]),
/// with nesting <c>M.weight.nested_absmax</c> (F32) and <c>M.weight.nested_quant_map</c> (F32 [256]), and
/// <c>M.weight.quant_state.bitsandbytes__nf4</c> (or <c>__fp4</c>): U8 bytes of <c>json.dumps</c> of
/// {quant_type, blocksize, dtype, shape[, nested_blocksize, nested_dtype, nested_offset]}.
/// </summary>
public static class BitsAndBytesCheckpoint
{
    private const string PackedKey = ".weight.quant_state.bitsandbytes__";

    /// <summary>The modules of a file that hold a bitsandbytes 4-bit weight (names with a packed quant_state tensor), sorted.</summary>
    public static IReadOnlyList<string> Modules(SafetensorsFile file)
    {
        ArgumentNullException.ThrowIfNull(file);
        return file.Entries.Keys.Select(k => (k, i: k.LastIndexOf(PackedKey, StringComparison.Ordinal)))
            .Where(p => p.i > 0 && p.k[(p.i + PackedKey.Length)..] is "nf4" or "fp4")
            .Select(p => p.k[..p.i]).Distinct().Order(StringComparer.Ordinal).ToArray();
    }

    /// <summary>
    /// The names of the tensors that belong to <paramref name="module"/>'s 4-bit state (present in the file), so a caller
    /// copying the rest of a checkpoint knows what to skip.
    /// </summary>
    public static IReadOnlyList<string> TensorNames(SafetensorsFile file, string module)
    {
        ArgumentNullException.ThrowIfNull(file);
        ArgumentNullException.ThrowIfNull(module);
        string[] suffixes = [".weight", ".weight.absmax", ".weight.quant_map", ".weight.nested_absmax", ".weight.nested_quant_map",
            PackedKey + "nf4", PackedKey + "fp4"];
        return suffixes.Select(s => module + s).Where(file.Entries.ContainsKey).ToArray();
    }

    /// <summary>
    /// Reads <paramref name="module"/>'s 4-bit state. A malformed state — a missing tensor, a wrong dtype or length, a
    /// packed JSON that is not bitsandbytes' — throws <see cref="InvalidDataException"/> naming the file and the tensor
    /// or key.
    /// </summary>
    /// <param name="file">An opened checkpoint.</param>
    /// <param name="module">Module name, e.g. "model.layers.0.mlp.down_proj".</param>
    public static BitsAndBytesQuantState Read(SafetensorsFile file, string module)
    {
        ArgumentNullException.ThrowIfNull(file);
        ArgumentNullException.ThrowIfNull(module);
        string path = file.Path, w = module + ".weight";
        var packed = new[] { "nf4", "fp4" }.Where(t => file.Entries.ContainsKey(module + PackedKey + t)).ToArray();
        if (packed.Length != 1)
            throw new InvalidDataException($"{path}: module '{module}' has {(packed.Length == 0 ? "no" : "two")} '{w}.quant_state.bitsandbytes__nf4/fp4' tensors; exactly one is needed.");
        string jsonKey = module + PackedKey + packed[0];
        Entry(file, jsonKey, "U8");
        JsonObject o;
        try { o = JsonNode.Parse(file.ReadBytes(jsonKey)) as JsonObject ?? throw new InvalidDataException($"{path}: '{jsonKey}' is not a JSON object."); }
        catch (JsonException ex) { throw new InvalidDataException($"{path}: '{jsonKey}' is not valid JSON ({ex.Message}).", ex); }
        string quantType = Text(o, "quant_type", path, jsonKey);
        if (quantType != packed[0]) throw new InvalidDataException($"{path}: '{jsonKey}' says quant_type '{quantType}'.");
        bool nested = o.ContainsKey("nested_blocksize") || o.ContainsKey("nested_offset") || o.ContainsKey("nested_dtype");
        var data = Entry(file, w, "U8");
        var absmax = Entry(file, w + ".absmax", nested ? "U8" : "F32");
        var map = Entry(file, w + ".quant_map", "F32");
        var shapeNode = o["shape"] as JsonArray ?? throw new InvalidDataException($"{path}: '{jsonKey}' key 'shape' is {o["shape"]?.ToJsonString() ?? "missing"}, not an array.");
        var shape = shapeNode.Select((v, i) => v is JsonValue jv && jv.TryGetValue<long>(out var l) ? l
            : throw new InvalidDataException($"{path}: '{jsonKey}' shape[{i}] is {v?.ToJsonString() ?? "null"}, not an integer.")).ToArray();
        var state = new BitsAndBytesQuantState
        {
            Source = $"{path}: module '{module}'",
            Data = file.ReadBytes(w),
            DataShape = data.Shape,
            QuantType = quantType,
            BlockSize = Integer(o, "blocksize", path, jsonKey),
            DType = Text(o, "dtype", path, jsonKey),
            Shape = shape,
            Absmax = nested ? null : file.Read<float>(absmax.Name),
            QuantizedAbsmax = nested ? file.ReadBytes(absmax.Name) : null,
            QuantMap = file.Read<float>(map.Name),
            NestedAbsmax = nested ? file.Read<float>(Entry(file, w + ".nested_absmax", "F32").Name) : null,
            NestedQuantMap = nested ? file.Read<float>(Entry(file, w + ".nested_quant_map", "F32").Name) : null,
            NestedBlockSize = nested ? Integer(o, "nested_blocksize", path, jsonKey) : 0,
            NestedDType = nested ? Text(o, "nested_dtype", path, jsonKey) : null,
            NestedOffset = nested ? Number(o, "nested_offset", path, jsonKey) : 0,
        };
        state.Validate();
        return state;
    }

    private static SafetensorsEntry Entry(SafetensorsFile file, string name, string dtype)
    {
        if (!file.Entries.TryGetValue(name, out var e)) throw new InvalidDataException($"{file.Path}: no tensor '{name}'.");
        if (e.DType != dtype) throw new InvalidDataException($"{file.Path}: '{name}' is {e.DType}, expected {dtype}.");
        return e;
    }

    private static string Text(JsonObject o, string key, string path, string tensor) =>
        o[key] is JsonValue v && v.TryGetValue<string>(out var s) ? s
            : throw new InvalidDataException($"{path}: '{tensor}' key '{key}' is {o[key]?.ToJsonString() ?? "missing"}, not a string.");

    private static int Integer(JsonObject o, string key, string path, string tensor) =>
        o[key] is JsonValue v && v.TryGetValue<int>(out var i) ? i
            : throw new InvalidDataException($"{path}: '{tensor}' key '{key}' is {o[key]?.ToJsonString() ?? "missing"}, not an integer.");

    private static double Number(JsonObject o, string key, string path, string tensor) =>
        o[key] is JsonValue v && v.TryGetValue<double>(out var d) ? d
            : throw new InvalidDataException($"{path}: '{tensor}' key '{key}' is {o[key]?.ToJsonString() ?? "missing"}, not a number.");

    /// <summary>
    /// The tensors of <paramref name="module"/>'s 4-bit state, as <c>Linear4bit._save_to_state_dict</c> names them,
    /// ready for <see cref="SafetensorsFile.WriteSorted"/> together with the checkpoint's other tensors.
    /// </summary>
    /// <param name="module">Module name.</param>
    /// <param name="state">A 4-bit state.</param>
    public static IReadOnlyList<SafetensorsFile.Tensor> Tensors(string module, BitsAndBytesQuantState state)
    {
        ArgumentNullException.ThrowIfNull(module);
        ArgumentNullException.ThrowIfNull(state);
        if (state.QuantType is null) throw new ArgumentException("bitsandbytes packs only 4-bit states (quant_type nf4/fp4) into safetensors.", nameof(state));
        state.Validate();
        string w = module + ".weight";
        var list = new List<SafetensorsFile.Tensor>
        {
            new(w, "U8", state.DataShape, state.Data),
            state.IsNested
                ? new(w + ".absmax", "U8", [state.QuantizedAbsmax!.LongLength], state.QuantizedAbsmax)
                : new(w + ".absmax", "F32", [state.Absmax!.LongLength], Bytes(state.Absmax)),
            new(w + ".quant_map", "F32", [state.QuantMap.LongLength], Bytes(state.QuantMap)),
        };
        if (state.IsNested)
        {
            list.Add(new(w + ".nested_absmax", "F32", [state.NestedAbsmax!.LongLength], Bytes(state.NestedAbsmax)));
            list.Add(new(w + ".nested_quant_map", "F32", [state.NestedQuantMap!.LongLength], Bytes(state.NestedQuantMap)));
        }
        var json = Encoding.UTF8.GetBytes(PackedJson(state));
        list.Add(new(module + PackedKey + state.QuantType, "U8", [json.LongLength], json));
        return list;
    }

    private static byte[] Bytes(float[] values) => MemoryMarshal.AsBytes(values.AsSpan()).ToArray();

    /// <summary>
    /// The packed JSON text bitsandbytes writes (<c>pack_dict_to_tensor</c>: Python's <c>json.dumps</c> of the
    /// non-tensor items in <c>as_dict</c> order, ", " and ": " separators, floats as Python's <c>repr</c>).
    /// </summary>
    /// <param name="state">A 4-bit state.</param>
    public static string PackedJson(BitsAndBytesQuantState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        var sb = new StringBuilder();
        sb.Append("{\"quant_type\": \"").Append(state.QuantType).Append("\", \"blocksize\": ").Append(state.BlockSize.ToString(CultureInfo.InvariantCulture))
          .Append(", \"dtype\": \"").Append(state.DType).Append("\", \"shape\": [")
          .Append(string.Join(", ", (state.Shape ?? []).Select(l => l.ToString(CultureInfo.InvariantCulture)))).Append(']');
        if (state.IsNested)
            sb.Append(", \"nested_blocksize\": ").Append(state.NestedBlockSize.ToString(CultureInfo.InvariantCulture))
              .Append(", \"nested_dtype\": \"").Append(state.NestedDType).Append("\", \"nested_offset\": ").Append(PythonJson.Repr(state.NestedOffset));
        return sb.Append('}').ToString();
    }
}
