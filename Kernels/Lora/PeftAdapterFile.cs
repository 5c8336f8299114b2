using System.Runtime.InteropServices;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Kernels.Runtime;
using Kernels.Tensors;

namespace Kernels.Lora;

/// <summary>
/// The fields of a PEFT <c>adapter_config.json</c> (<c>LoraConfig</c>) that decide a LoRA layer's math: r,
/// lora_alpha, use_rslora and the per-module rank_pattern / alpha_pattern overrides. The whole JSON object is kept so
/// that saving writes back every field PEFT wrote (docs/checkpoints.md §1).
/// </summary>
public sealed class PeftLoraConfig
{
    private PeftLoraConfig(JsonObject json, int r, double loraAlpha, bool useRslora,
        IReadOnlyDictionary<string, int> rankPattern, IReadOnlyDictionary<string, double> alphaPattern)
    {
        Json = json;
        R = r;
        LoraAlpha = loraAlpha;
        UseRslora = useRslora;
        RankPattern = rankPattern;
        AlphaPattern = alphaPattern;
    }

    /// <summary>The whole configuration as read (or as built by <see cref="Create"/>).</summary>
    public JsonObject Json { get; }

    /// <summary>Default rank r.</summary>
    public int R { get; }

    /// <summary>Default lora_alpha.</summary>
    public double LoraAlpha { get; }

    /// <summary>rsLoRA: scale lora_alpha / √r instead of lora_alpha / r.</summary>
    public bool UseRslora { get; }

    /// <summary>rank_pattern: module-name pattern → r.</summary>
    public IReadOnlyDictionary<string, int> RankPattern { get; }

    /// <summary>alpha_pattern: module-name pattern → lora_alpha.</summary>
    public IReadOnlyDictionary<string, double> AlphaPattern { get; }

    /// <summary>target_modules as written: a list of names, or one regular expression / "all-linear" string.</summary>
    public JsonNode? TargetModules => Json["target_modules"];

    /// <summary>The rank PEFT gives <paramref name="module"/> (rank_pattern first, else r).</summary>
    /// <param name="module">Module name without the "base_model.model." prefix, e.g. "model.layers.0.self_attn.q_proj".</param>
    public int RankOf(string module) => PatternKey(RankPattern.Keys, module) is { } key ? RankPattern[key] : R;

    /// <summary>The lora_alpha PEFT gives <paramref name="module"/> (alpha_pattern first, else lora_alpha).</summary>
    /// <param name="module">Module name without the "base_model.model." prefix.</param>
    public double AlphaOf(string module) => PatternKey(AlphaPattern.Keys, module) is { } key ? AlphaPattern[key] : LoraAlpha;

    /// <summary>
    /// PEFT's scaling for <paramref name="module"/>: lora_alpha / r, or lora_alpha / √r with use_rslora (computed in
    /// double as Python does, then rounded to fp32).
    /// </summary>
    /// <param name="module">Module name without the "base_model.model." prefix.</param>
    public float ScaleOf(string module)
    {
        double alpha = AlphaOf(module), r = RankOf(module);
        return (float)(UseRslora ? alpha / Math.Sqrt(r) : alpha / r);
    }

    // peft.utils.other.get_pattern_key: the first pattern p for which the module name matches (.*\.)?(p)$.
    private static string? PatternKey(IEnumerable<string> patterns, string module)
    {
        foreach (var p in patterns)
            if (Regex.IsMatch(module, $"^(.*\\.)?({p})$")) return p;
        return null;
    }

    /// <summary>
    /// A new LoRA configuration as PEFT's <c>LoraConfig</c> would write it for these values (peft_type "LORA",
    /// task_type null, no patterns). Other fields can be added to <see cref="Json"/> before saving.
    /// </summary>
    /// <param name="r">Default rank.</param>
    /// <param name="loraAlpha">lora_alpha.</param>
    /// <param name="useRslora">rsLoRA scaling.</param>
    /// <param name="targetModules">target_modules names.</param>
    public static PeftLoraConfig Create(int r, double loraAlpha, bool useRslora, IReadOnlyList<string> targetModules)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(r, 1);
        if (!double.IsFinite(loraAlpha)) throw new ArgumentException($"lora_alpha {loraAlpha} is not finite.", nameof(loraAlpha));
        ArgumentNullException.ThrowIfNull(targetModules);
        var json = new JsonObject
        {
            ["alpha_pattern"] = new JsonObject(),
            ["bias"] = "none",
            // Python writes an int lora_alpha as "16" and a float as repr ("0.0", "1e-05"): keep that text.
            ["lora_alpha"] = loraAlpha == Math.Floor(loraAlpha) && Math.Abs(loraAlpha) < 1e15 ? JsonValue.Create((long)loraAlpha) : JsonNode.Parse(PythonJson.Repr(loraAlpha)),
            ["lora_dropout"] = JsonNode.Parse(PythonJson.Repr(0.0)),
            ["peft_type"] = "LORA",
            ["r"] = r,
            ["rank_pattern"] = new JsonObject(),
            ["target_modules"] = new JsonArray(targetModules.Select(m => (JsonNode)JsonValue.Create(m)!).ToArray()),
            ["task_type"] = null,
            ["use_dora"] = false,
            ["use_rslora"] = useRslora,
        };
        return Parse(json.ToJsonString(), "(new config)");
    }

    /// <summary>
    /// Parses <c>adapter_config.json</c> text. It must describe plain LoRA: peft_type "LORA" (when present), r ≥ 1,
    /// a finite lora_alpha; use_dora and lora_bias, which change the layer's math, must be absent or false. A malformed
    /// config throws <see cref="InvalidDataException"/> naming <paramref name="path"/> and the key.
    /// </summary>
    /// <param name="json">The file's text.</param>
    /// <param name="path">The file name, for messages.</param>
    public static PeftLoraConfig Parse(string json, string path)
    {
        ArgumentNullException.ThrowIfNull(json);
        JsonNode? parsed;
        try { parsed = JsonNode.Parse(json); }
        catch (JsonException ex) { throw new InvalidDataException($"{path}: not valid JSON ({ex.Message}).", ex); }
        var o = parsed as JsonObject ?? throw new InvalidDataException($"{path}: not a JSON object.");
        if (o["peft_type"] is { } type && !(type is JsonValue tv && tv.TryGetValue<string>(out var t) && t == "LORA"))
            throw new InvalidDataException($"{path}: peft_type is {type.ToJsonString()}, not \"LORA\".");
        foreach (var flag in new[] { "use_dora", "lora_bias" })
            if (o[flag] is JsonValue fv && fv.TryGetValue<bool>(out var on) && on)
                throw new InvalidDataException($"{path}: {flag} is true; only plain LoRA (A, B, scale) is supported.");
        int r = Integer(o["r"], path, "r");
        if (r < 1) throw new InvalidDataException($"{path}: r = {r}; a rank is at least 1.");
        double alpha = Number(o["lora_alpha"], path, "lora_alpha");
        bool rslora = o["use_rslora"] switch
        {
            null => false,
            JsonValue v when v.TryGetValue<bool>(out var b) => b,
            var other => throw new InvalidDataException($"{path}: use_rslora is {other.ToJsonString()}, not a boolean."),
        };
        var ranks = new Dictionary<string, int>();
        foreach (var (k, v) in Map(o["rank_pattern"], path, "rank_pattern"))
        {
            ranks[k] = Integer(v, path, $"rank_pattern['{k}']");
            if (ranks[k] < 1) throw new InvalidDataException($"{path}: rank_pattern['{k}'] = {ranks[k]}; a rank is at least 1.");
        }
        var alphas = new Dictionary<string, double>();
        foreach (var (k, v) in Map(o["alpha_pattern"], path, "alpha_pattern")) alphas[k] = Number(v, path, $"alpha_pattern['{k}']");
        return new PeftLoraConfig(o, r, alpha, rslora, ranks, alphas);
    }

    private static IEnumerable<KeyValuePair<string, JsonNode?>> Map(JsonNode? node, string path, string key) => node switch
    {
        null => [],
        JsonObject m => m,
        _ => throw new InvalidDataException($"{path}: {key} is {node.ToJsonString()}, not an object."),
    };

    private static int Integer(JsonNode? node, string path, string key) =>
        node is JsonValue v && v.TryGetValue<int>(out var i) ? i
            : throw new InvalidDataException($"{path}: {key} is {node?.ToJsonString() ?? "missing"}, not an integer.");

    private static double Number(JsonNode? node, string path, string key) =>
        node is JsonValue v && v.TryGetValue<double>(out var d) && double.IsFinite(d) ? d
            : throw new InvalidDataException($"{path}: {key} is {node?.ToJsonString() ?? "missing"}, not a finite number.");

    /// <summary>
    /// The text PEFT's <c>save_pretrained</c> writes: <c>json.dumps(config, indent=2, sort_keys=True)</c>, keys sorted
    /// at every level, two-space indent, no trailing newline. Numbers keep the text they were read with.
    /// </summary>
    public string ToJsonText()
    {
        var options = new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, NewLine = "\n" };
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, options)) WriteSorted(writer, Json);
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    private static void WriteSorted(Utf8JsonWriter writer, JsonNode? node)
    {
        switch (node)
        {
            case JsonObject o:
                writer.WriteStartObject();
                foreach (var (k, v) in o.OrderBy(p => p.Key, StringComparer.Ordinal))
                {
                    writer.WritePropertyName(k);
                    WriteSorted(writer, v);
                }
                writer.WriteEndObject();
                break;
            case JsonArray a:
                writer.WriteStartArray();
                foreach (var v in a) WriteSorted(writer, v);
                writer.WriteEndArray();
                break;
            case null:
                writer.WriteNullValue();
                break;
            default:
                node.WriteTo(writer);
                break;
        }
    }
}

/// <summary>One adapted module of a PEFT adapter: its name, shape and factors.</summary>
/// <param name="Module">Module name without the key prefix, e.g. "model.layers.0.self_attn.q_proj".</param>
/// <param name="InFeatures">K, the columns of A.</param>
/// <param name="OutFeatures">N, the rows of B.</param>
/// <param name="Adapter">r, the scale PEFT applies, A (r×K) and B (N×r).</param>
public sealed record PeftLoraModule<T>(string Module, int InFeatures, int OutFeatures, LoraAdapter<T> Adapter) where T : unmanaged;

/// <summary>
/// A PEFT LoRA adapter directory: <c>adapter_model.safetensors</c> with
/// <c>base_model.model.&lt;module&gt;.lora_A.weight</c> (r×in) and <c>….lora_B.weight</c> (out×r) per adapted module,
/// and <c>adapter_config.json</c>. Loads into <see cref="LoraAdapter{T}"/>s (and from there into
/// <see cref="LoraAdapterSet{T}"/>s) and saves back the bytes PEFT would write (docs/checkpoints.md §1).
/// Element type <typeparamref name="T"/> is float, ILGPU.Half or BFloat16; tensors of another of these dtypes are
/// converted on load (round to nearest even).
/// </summary>
public sealed class PeftLoraAdapter<T> where T : unmanaged
{
    /// <summary>PEFT's weights file name.</summary>
    public const string WeightsFileName = "adapter_model.safetensors";

    /// <summary>PEFT's config file name.</summary>
    public const string ConfigFileName = "adapter_config.json";

    /// <summary>The key prefix PEFT's <c>get_peft_model_state_dict</c> gives a LoRA model's tensors.</summary>
    public const string DefaultKeyPrefix = "base_model.model.";

    private const string ASuffix = ".lora_A.weight", BSuffix = ".lora_B.weight";

    private readonly Dictionary<string, PeftLoraModule<T>> byName;

    private PeftLoraAdapter(PeftLoraConfig config, string keyPrefix, List<PeftLoraModule<T>> modules)
    {
        Config = config;
        KeyPrefix = keyPrefix;
        Modules = modules;
        byName = modules.ToDictionary(m => m.Module, StringComparer.Ordinal);
    }

    /// <summary>The adapter configuration.</summary>
    public PeftLoraConfig Config { get; }

    /// <summary>The prefix of every tensor key ("base_model.model." in PEFT's files).</summary>
    public string KeyPrefix { get; }

    /// <summary>The adapted modules, ordered by name.</summary>
    public IReadOnlyList<PeftLoraModule<T>> Modules { get; }

    /// <summary>The module named <paramref name="module"/> (without the prefix).</summary>
    public PeftLoraModule<T> this[string module] =>
        byName.TryGetValue(module, out var m) ? m : throw new KeyNotFoundException($"The adapter has no module '{module}'.");

    /// <summary>safetensors dtype of <typeparamref name="T"/>.</summary>
    public static string DType => ElementTypes.Of<T>() switch
    {
        ElementType.Float32 => "F32",
        ElementType.Float16 => "F16",
        _ => "BF16",
    };

    /// <summary>Reads <c>adapter_config.json</c> and <c>adapter_model.safetensors</c> from <paramref name="directory"/>.</summary>
    /// <param name="directory">A directory PEFT's <c>save_pretrained</c> wrote.</param>
    public static PeftLoraAdapter<T> Load(string directory)
    {
        ArgumentNullException.ThrowIfNull(directory);
        return Load(Path.Combine(directory, ConfigFileName), Path.Combine(directory, WeightsFileName));
    }

    /// <summary>
    /// Reads an adapter. Every tensor must be a <c>lora_A.weight</c> / <c>lora_B.weight</c> pair of one module under
    /// one common prefix, 2-D, F32/F16/BF16, with A r×K and B N×r for the rank the config gives the module; anything
    /// else — a lone factor, a DoRA magnitude, a bias, modules_to_save weights — throws
    /// <see cref="InvalidDataException"/> naming the file and the tensor.
    /// </summary>
    /// <param name="configPath">adapter_config.json.</param>
    /// <param name="weightsPath">adapter_model.safetensors.</param>
    public static PeftLoraAdapter<T> Load(string configPath, string weightsPath)
    {
        Require.Supported<T>("T");
        var config = PeftLoraConfig.Parse(File.ReadAllText(configPath), configPath);
        var file = SafetensorsFile.Open(weightsPath);
        var factors = new SortedDictionary<string, (SafetensorsEntry? A, SafetensorsEntry? B)>(StringComparer.Ordinal);
        string? prefix = null;
        foreach (var (name, e) in file.Entries)
        {
            bool isA = name.EndsWith(ASuffix, StringComparison.Ordinal), isB = name.EndsWith(BSuffix, StringComparison.Ordinal);
            if (!isA && !isB)
                throw new InvalidDataException($"{weightsPath}: tensor '{name}' is not a lora_A.weight or lora_B.weight; only plain LoRA factors are supported.");
            string full = name[..^(isA ? ASuffix.Length : BSuffix.Length)];
            string p = full.StartsWith(DefaultKeyPrefix, StringComparison.Ordinal) ? DefaultKeyPrefix : "";
            if (prefix is not null && p != prefix)
                throw new InvalidDataException($"{weightsPath}: tensor '{name}' does not share the key prefix '{prefix}' of the others.");
            prefix = p;
            string module = full[p.Length..];
            if (module.Length == 0) throw new InvalidDataException($"{weightsPath}: tensor '{name}' names no module.");
            if (e.DType is not ("F32" or "F16" or "BF16"))
                throw new InvalidDataException($"{weightsPath}: '{name}' has dtype {e.DType}; LoRA factors are F32, F16 or BF16.");
            if (e.Shape.Length != 2 || e.Shape[0] < 1 || e.Shape[1] < 1 || e.Shape[0] > int.MaxValue || e.Shape[1] > int.MaxValue)
                throw new InvalidDataException($"{weightsPath}: '{name}' has shape [{string.Join(", ", e.Shape)}]; a LoRA factor is a non-empty matrix.");
            var pair = factors.GetValueOrDefault(module);
            factors[module] = isA ? (e, pair.B) : (pair.A, e);
        }
        if (factors.Count == 0) throw new InvalidDataException($"{weightsPath}: no LoRA factors.");

        var modules = new List<PeftLoraModule<T>>();
        foreach (var (module, (a, b)) in factors)
        {
            if (a is null || b is null)
                throw new InvalidDataException($"{weightsPath}: module '{module}' has {(a is null ? "lora_B" : "lora_A")}.weight but no {(a is null ? "lora_A" : "lora_B")}.weight.");
            int r = (int)a.Shape[0], k = (int)a.Shape[1], n = (int)b.Shape[0];
            if (b.Shape[1] != r)
                throw new InvalidDataException($"{weightsPath}: '{b.Name}' is [{string.Join(", ", b.Shape)}] but '{a.Name}' has rank {r}; lora_B.weight must be out×{r}.");
            int expected = config.RankOf(module);
            if (r != expected)
                throw new InvalidDataException($"{weightsPath}: '{a.Name}' has rank {r} but {configPath} gives '{module}' r = {expected}.");
            if (r > LoraAdapterSet<T>.MaxSupportedRank)
                throw new InvalidDataException($"{weightsPath}: '{a.Name}' has rank {r}; the library supports ranks up to {LoraAdapterSet<T>.MaxSupportedRank}.");
            modules.Add(new PeftLoraModule<T>(module, k, n,
                new LoraAdapter<T>(r, config.ScaleOf(module), ReadAs(file, a), ReadAs(file, b))));
        }
        return new PeftLoraAdapter<T>(config, prefix!, modules);
    }

    // The tensor's elements as T: reinterpreted when the dtype is T's, else widened to f32 and narrowed to T.
    private static T[] ReadAs(SafetensorsFile file, SafetensorsEntry e)
    {
        var bytes = file.ReadBytes(e.Name);
        if (e.DType == DType) return MemoryMarshal.Cast<byte, T>(bytes).ToArray();
        var result = new T[e.ElementCount];
        for (long i = 0; i < result.LongLength; i++)
        {
            float f = e.DType switch
            {
                "F32" => BitConverter.ToSingle(bytes, (int)(4 * i)),
                "F16" => Fp16.ToFloat(BitConverter.ToUInt16(bytes, (int)(2 * i))),
                _ => BitConverter.UInt32BitsToSingle((uint)BitConverter.ToUInt16(bytes, (int)(2 * i)) << 16),
            };
            result[i] = ElementTypes.FromFloat<T>(f);
        }
        return result;
    }

    /// <summary>
    /// An adapter from modules already on the host. Each module's rank and scale must be the ones
    /// <paramref name="config"/> gives it (PEFT's files do not store the scale: the config is its only record).
    /// </summary>
    /// <param name="config">The configuration to save with the factors.</param>
    /// <param name="modules">Modules with distinct names.</param>
    /// <param name="keyPrefix">Tensor key prefix; PEFT's is <see cref="DefaultKeyPrefix"/>.</param>
    public static PeftLoraAdapter<T> Create(PeftLoraConfig config, IEnumerable<PeftLoraModule<T>> modules, string keyPrefix = DefaultKeyPrefix)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(modules);
        ArgumentNullException.ThrowIfNull(keyPrefix);
        Require.Supported<T>(nameof(modules));
        var list = modules.OrderBy(m => m?.Module, StringComparer.Ordinal).ToList();
        if (list.Count == 0) throw new ArgumentException("An adapter needs at least one module.", nameof(modules));
        for (int i = 0; i < list.Count; i++)
        {
            var m = list[i] ?? throw new ArgumentException("A module is null.", nameof(modules));
            if (string.IsNullOrEmpty(m.Module)) throw new ArgumentException("A module has no name.", nameof(modules));
            if (i > 0 && list[i - 1].Module == m.Module) throw new ArgumentException($"Module '{m.Module}' appears twice.", nameof(modules));
            var ad = m.Adapter ?? throw new ArgumentException($"Module '{m.Module}' has no adapter.", nameof(modules));
            if (m.InFeatures < 1 || m.OutFeatures < 1)
                throw new ArgumentException($"Module '{m.Module}': in {m.InFeatures} × out {m.OutFeatures} features; both must be ≥ 1.", nameof(modules));
            if (ad.Rank != config.RankOf(m.Module))
                throw new ArgumentException($"Module '{m.Module}' has rank {ad.Rank} but the config gives it r = {config.RankOf(m.Module)}.", nameof(modules));
            if (ad.Scale != config.ScaleOf(m.Module))
                throw new ArgumentException($"Module '{m.Module}' has scale {ad.Scale} but the config gives it {config.ScaleOf(m.Module)} (lora_alpha {config.AlphaOf(m.Module)}, r {ad.Rank}, use_rslora {config.UseRslora}).", nameof(modules));
            if (ad.A is null || ad.A.LongLength != (long)ad.Rank * m.InFeatures)
                throw new ArgumentException($"Module '{m.Module}': A has {ad.A?.LongLength ?? 0} elements but rank {ad.Rank} × K {m.InFeatures} needs {(long)ad.Rank * m.InFeatures}.", nameof(modules));
            if (ad.B is null || ad.B.LongLength != (long)m.OutFeatures * ad.Rank)
                throw new ArgumentException($"Module '{m.Module}': B has {ad.B?.LongLength ?? 0} elements but N {m.OutFeatures} × rank {ad.Rank} needs {(long)m.OutFeatures * ad.Rank}.", nameof(modules));
        }
        return new PeftLoraAdapter<T>(config, keyPrefix, list);
    }

    /// <summary>
    /// Reads adapters back from device adapter sets (e.g. after training) into a host adapter; see
    /// <see cref="Create"/> for the checks. Waits for each set's device.
    /// </summary>
    /// <param name="config">The configuration to save with the factors.</param>
    /// <param name="modules">For each module: its name, a set, and the adapter id in that set.</param>
    public static PeftLoraAdapter<T> FromAdapterSets(PeftLoraConfig config, IEnumerable<(string Module, LoraAdapterSet<T> Set, int Id)> modules)
    {
        ArgumentNullException.ThrowIfNull(modules);
        var list = new List<PeftLoraModule<T>>();
        foreach (var (module, set, id) in modules)
        {
            ArgumentNullException.ThrowIfNull(set, nameof(modules));
            if ((uint)id >= (uint)set.Count) throw new ArgumentOutOfRangeException(nameof(modules), $"Module '{module}': adapter id {id} is outside the set's 0…{set.Count - 1}.");
            set.ThrowIfDisposed();
            list.Add(new PeftLoraModule<T>(module, set.InFeatures, set.OutFeatures,
                new LoraAdapter<T>(set.Rank(id), set.Scale(id), set.A(id).ToArray(), set.B(id).ToArray())));
        }
        return Create(config, list);
    }

    /// <summary>Uploads one module as a one-adapter set (adapter id 0).</summary>
    /// <param name="device">Where the set lives.</param>
    /// <param name="module">Module name without the prefix.</param>
    public LoraAdapterSet<T> CreateSet(ComputeDevice device, string module) => CreateSet(device, module, [this]);

    /// <summary>
    /// Uploads the same module of several adapters as one multi-adapter set: adapter id i is
    /// <paramref name="adapters"/>[i] (their ranks and scales may differ, their K and N may not).
    /// </summary>
    /// <param name="device">Where the set lives.</param>
    /// <param name="module">Module name without the prefix.</param>
    /// <param name="adapters">Adapters that all adapt <paramref name="module"/>.</param>
    public static LoraAdapterSet<T> CreateSet(ComputeDevice device, string module, IReadOnlyList<PeftLoraAdapter<T>> adapters)
    {
        ArgumentNullException.ThrowIfNull(adapters);
        ArgumentNullException.ThrowIfNull(module);
        if (adapters.Count == 0) throw new ArgumentException("At least one adapter is needed.", nameof(adapters));
        var found = new List<PeftLoraModule<T>>();
        for (int i = 0; i < adapters.Count; i++)
        {
            var a = adapters[i] ?? throw new ArgumentException($"Adapter {i} is null.", nameof(adapters));
            if (!a.byName.TryGetValue(module, out var m))
                throw new ArgumentException($"Adapter {i} does not adapt '{module}'.", nameof(module));
            if (found.Count > 0 && (m.InFeatures != found[0].InFeatures || m.OutFeatures != found[0].OutFeatures))
                throw new ArgumentException($"Adapter {i}'s '{module}' is {m.OutFeatures}×{m.InFeatures} but adapter 0's is {found[0].OutFeatures}×{found[0].InFeatures}.", nameof(adapters));
            found.Add(m);
        }
        return LoraAdapterSet<T>.Create(device, found[0].InFeatures, found[0].OutFeatures, found.Select(m => m.Adapter).ToArray());
    }

    /// <summary>
    /// Writes <c>adapter_config.json</c> and <c>adapter_model.safetensors</c> into <paramref name="directory"/> (created
    /// if needed) as PEFT's <c>save_pretrained</c> does: tensors in <typeparamref name="T"/>'s dtype, in the
    /// safetensors crate's order, metadata {"format": "pt"}; the config sorted and indented by two.
    /// </summary>
    /// <param name="directory">Target directory.</param>
    public void Save(string directory)
    {
        ArgumentNullException.ThrowIfNull(directory);
        Directory.CreateDirectory(directory);
        var tensors = new List<SafetensorsFile.Tensor>();
        foreach (var m in Modules)
        {
            var ad = m.Adapter;
            tensors.Add(new($"{KeyPrefix}{m.Module}{ASuffix}", DType, [ad.Rank, m.InFeatures], MemoryMarshal.AsBytes(ad.A.AsSpan()).ToArray()));
            tensors.Add(new($"{KeyPrefix}{m.Module}{BSuffix}", DType, [m.OutFeatures, ad.Rank], MemoryMarshal.AsBytes(ad.B.AsSpan()).ToArray()));
        }
        SafetensorsFile.WriteSorted(Path.Combine(directory, WeightsFileName), tensors, new Dictionary<string, string> { ["format"] = "pt" });
        File.WriteAllText(Path.Combine(directory, ConfigFileName), Config.ToJsonText());
    }
}
