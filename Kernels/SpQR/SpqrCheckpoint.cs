using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using Kernels.Tensors;

namespace Kernels.SpQR;

/// <summary>
/// The <c>quantization_config</c> of a SpQR checkpoint (Hugging Face <c>SpQRConfig</c>). Naming trap
/// (docs/spqr.md §1.3): in the checkpoints <c>beta1</c> is the tile height (the paper's β2, rows sharing
/// second-order statistics) and <c>beta2</c> the tile width (the paper's β1, columns sharing first-order statistics).
/// </summary>
/// <param name="Bits">Weight code bits (must be 3).</param>
/// <param name="Beta1">Tile height in rows (must be 16).</param>
/// <param name="Beta2">Tile width in columns (must be 16).</param>
/// <param name="Shapes">The "shapes" map: "&lt;module&gt;.&lt;tensor&gt;.shape" → element count.</param>
/// <param name="ModulesToNotConvert">Modules kept dense.</param>
public sealed record SpqrConfig(int Bits, int Beta1, int Beta2, IReadOnlyDictionary<string, long> Shapes, IReadOnlyList<string> ModulesToNotConvert)
{
    /// <summary>The configuration every SpQR kernel (theirs and ours) implements.</summary>
    public static SpqrConfig Default { get; } = new(3, 16, 16, new Dictionary<string, long>(), []);

    /// <summary>
    /// Parses a <c>config.json</c> (or its <c>quantization_config</c> object alone) and checks it describes the packed
    /// format this library reads: quant_method "spqr", bits 3, beta1 16, beta2 16.
    /// </summary>
    public static SpqrConfig Parse(string json)
    {
        var root = JsonNode.Parse(json) as JsonObject ?? throw new ArgumentException("config is not a JSON object.", nameof(json));
        var q = root["quantization_config"] as JsonObject ?? root;
        string method = q["quant_method"]?.GetValue<string>() ?? "";
        if (!string.Equals(method, "spqr", StringComparison.OrdinalIgnoreCase))
            throw new ArgumentException($"quantization_config.quant_method is '{method}', not 'spqr'.", nameof(json));
        int bits = Int(q, "bits"), beta1 = Int(q, "beta1"), beta2 = Int(q, "beta2");
        if (bits != SpqrLayout.Bits)
            throw new ArgumentException($"quantization_config.bits = {bits}: the packed SpQR format holds 3-bit codes.", nameof(json));
        if (beta1 != SpqrLayout.Tile)
            throw new ArgumentException($"quantization_config.beta1 = {beta1}: beta1 is the tile height (rows per second-order group) and must be 16.", nameof(json));
        if (beta2 != SpqrLayout.Tile)
            throw new ArgumentException($"quantization_config.beta2 = {beta2}: beta2 is the tile width (columns per first-order group) and must be 16.", nameof(json));
        var shapes = new Dictionary<string, long>();
        if (q["shapes"] is JsonObject s)
            foreach (var (k, v) in s)
                shapes[k] = v is JsonArray a ? a.Aggregate(1L, (p, x) => p * x!.GetValue<long>()) : v!.GetValue<long>();
        var skip = (q["modules_to_not_convert"] as JsonArray)?.Select(x => x!.GetValue<string>()).ToArray() ?? [];
        return new SpqrConfig(bits, beta1, beta2, shapes, skip);
    }

    private static int Int(JsonObject q, string name) =>
        q[name]?.GetValue<int>() ?? throw new ArgumentException($"quantization_config has no '{name}'.", "json");

    /// <summary>Writes the quantization_config object for the given layers.</summary>
    public static JsonObject ToJson(IReadOnlyDictionary<string, SpqrPacked> layers)
    {
        var shapes = new JsonObject();
        foreach (var (module, p) in layers)
        {
            shapes[$"{module}.dense_weights.shape"] = p.DenseWeights.Length;
            shapes[$"{module}.row_offsets.shape"] = p.RowOffsets.Length;
            shapes[$"{module}.col_vals.shape"] = p.ColVals.Length;
            shapes[$"{module}.in_perm.shape"] = p.InPerm.Length;
        }
        return new JsonObject
        {
            ["quant_method"] = "spqr", ["bits"] = 3, ["beta1"] = 16, ["beta2"] = 16,
            ["modules_to_not_convert"] = new JsonArray(), ["shapes"] = shapes,
        };
    }
}

/// <summary>
/// Reads and writes SpQR layers in Hugging Face safetensors checkpoints: per module
/// <c>&lt;module&gt;.dense_weights</c> (I64), <c>.row_offsets</c>, <c>.col_vals</c>, <c>.in_perm</c> (I32). The
/// checkpoints do not store m and n; this library writes them as "__metadata__" entries
/// "&lt;module&gt;.spqr_shape" = "m,n", and otherwise takes them from the caller or infers them (CSR: m = len(row_offsets) − 1,
/// n = 2·len(in_perm), the multiples of 16 every published checkpoint has).
/// </summary>
public static class SpqrCheckpoint
{
    /// <summary>The modules of a file (names with a ".dense_weights" tensor).</summary>
    public static IReadOnlyList<string> Modules(SafetensorsFile file) =>
        file.Entries.Keys.Where(k => k.EndsWith(".dense_weights", StringComparison.Ordinal))
            .Select(k => k[..^".dense_weights".Length]).OrderBy(k => k, StringComparer.Ordinal).ToArray();

    /// <summary>Reads and validates one layer; <paramref name="rows"/>/<paramref name="columns"/> override the stored or inferred shape.</summary>
    public static SpqrPacked ReadLayer(SafetensorsFile file, string module, SpqrConfig? config = null, int? rows = null, int? columns = null)
    {
        ArgumentNullException.ThrowIfNull(file);
        config ??= SpqrConfig.Default;
        var dense = Require(file, module, "dense_weights", "I64");
        var offsets = Require(file, module, "row_offsets", "I32");
        // A layer without outliers saved by the reference toolchain stores col_vals as torch's empty default, F32[0].
        var colVals = Require(file, module, "col_vals", "I32", emptyOfAnyType: true);
        var perm = Require(file, module, "in_perm", "I32");
        foreach (var e in new[] { dense, offsets, colVals, perm })
            if (config.Shapes.TryGetValue(e.Name + ".shape", out long expected) && expected != e.ElementCount)
                throw new InvalidDataException($"{file.Path}: '{e.Name}' has {e.ElementCount} elements but quantization_config.shapes says {expected}.");

        int m, n;
        if (rows is int rr && columns is int cc) (m, n) = (rr, cc);
        else if (file.Metadata.TryGetValue(module + ".spqr_shape", out var shape))
        {
            var parts = shape.Split(',');
            if (parts.Length != 2
                || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out m)
                || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out n))
                throw new InvalidDataException(
                    $"{file.Path}: metadata '{module}.spqr_shape' is '{shape}', not 'rows,columns' (two non-negative integers).");
        }
        else
        {
            m = checked((int)offsets.ElementCount - 1);
            n = checked((int)perm.ElementCount * 2);
            if (SpqrLayout.DenseWords(m, n) != dense.ElementCount)
                throw new InvalidDataException(
                    $"{module}: cannot infer the shape (m = {m} from CSR row_offsets, n = {n} from in_perm give {SpqrLayout.DenseWords(m, n)} words, the file has {dense.ElementCount}); pass rows and columns.");
        }
        var colValues = colVals.ElementCount == 0 ? [] : file.Read<uint>(colVals.Name);
        try
        {
            return new SpqrPacked(m, n, file.Read<ulong>(dense.Name), file.Read<int>(offsets.Name), colValues, file.Read<uint>(perm.Name));
        }
        catch (ArgumentException ex)
        {
            throw new InvalidDataException($"{file.Path}: layer '{module}' ({m}×{n}) is not a valid SpQR matrix: {ex.Message}", ex);
        }
    }

    private static SafetensorsEntry Require(SafetensorsFile file, string module, string tensor, string dtype, bool emptyOfAnyType = false)
    {
        string name = $"{module}.{tensor}";
        if (!file.Entries.TryGetValue(name, out var e)) throw new InvalidDataException($"{file.Path}: missing tensor '{name}'.");
        if (e.DType != dtype && !(emptyOfAnyType && e.ElementCount == 0))
            throw new InvalidDataException($"{file.Path}: '{name}' is {e.DType}, expected {dtype}.");
        return e;
    }

    /// <summary>Writes layers to a safetensors file in the checkpoint layout, with their shapes as metadata.</summary>
    public static void Write(string path, IReadOnlyDictionary<string, SpqrPacked> layers)
    {
        ArgumentNullException.ThrowIfNull(layers);
        var tensors = new List<SafetensorsFile.Tensor>();
        var metadata = new Dictionary<string, string> { ["format"] = "pt" };
        foreach (var (module, p) in layers.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            tensors.Add(new($"{module}.col_vals", "I32", [p.ColVals.Length], MemoryMarshal.AsBytes(p.ColVals.AsSpan()).ToArray()));
            tensors.Add(new($"{module}.dense_weights", "I64", [p.DenseWeights.Length], MemoryMarshal.AsBytes(p.DenseWeights.AsSpan()).ToArray()));
            tensors.Add(new($"{module}.in_perm", "I32", [p.InPerm.Length], MemoryMarshal.AsBytes(p.InPerm.AsSpan()).ToArray()));
            tensors.Add(new($"{module}.row_offsets", "I32", [p.RowOffsets.Length], MemoryMarshal.AsBytes(p.RowOffsets.AsSpan()).ToArray()));
            metadata[module + ".spqr_shape"] = string.Create(CultureInfo.InvariantCulture, $"{p.Rows},{p.Columns}");
        }
        SafetensorsFile.Write(path, tensors, metadata);
    }
}
