using System.Text;
using Kernels.Lora;
using Kernels.Tensors;
using Kernels.Tests.Foundation;
using Kernels.Tests.Harness;
using Xunit;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Tests.Lora;

/// <summary>
/// PEFT LoRA adapter directories written in PEFT's layout (built here: keys <c>base_model.model.&lt;module&gt;.lora_A.weight</c>
/// r×in and <c>….lora_B.weight</c> out×r through the safetensors crate's layout, and adapter_config.json as
/// <c>json.dumps(indent=2, sort_keys=True)</c>): loaded, checked against the values written, saved back byte for byte.
/// </summary>
public class PeftAdapterFileTests
{
    private const string Q = "model.layers.0.self_attn.q_proj", V = "model.layers.0.self_attn.v_proj", Down = "model.layers.1.mlp.down_proj";

    // What PEFT 0.x writes for LoraConfig(r=4, lora_alpha=16, target_modules=[...], rank_pattern={down_proj: 2},
    // alpha_pattern={down_proj: 6}, lora_dropout=0.05, task_type="CAUSAL_LM"), trimmed to a representative set of keys.
    private static string ConfigText(bool rslora, string extra = "") =>
        "{\n" +
        "  \"alpha_pattern\": {\n    \"down_proj\": 6\n  },\n" +
        "  \"auto_mapping\": null,\n" +
        "  \"base_model_name_or_path\": \"tiny-llama\",\n" +
        "  \"bias\": \"none\",\n" +
        "  \"fan_in_fan_out\": false,\n" +
        "  \"inference_mode\": true,\n" +
        "  \"init_lora_weights\": true,\n" +
        "  \"layer_replication\": null,\n" +
        "  \"layers_to_transform\": null,\n" +
        "  \"loftq_config\": {},\n" +
        "  \"lora_alpha\": 16,\n" +
        "  \"lora_dropout\": 0.05,\n" +
        "  \"megatron_config\": null,\n" +
        "  \"modules_to_save\": null,\n" +
        "  \"peft_type\": \"LORA\",\n" +
        "  \"r\": 4,\n" +
        "  \"rank_pattern\": {\n    \"down_proj\": 2\n  },\n" +
        "  \"revision\": null,\n" +
        "  \"target_modules\": [\n    \"q_proj\",\n    \"v_proj\",\n    \"down_proj\"\n  ],\n" +
        "  \"task_type\": \"CAUSAL_LM\",\n" +
        extra +
        "  \"use_dora\": false,\n" +
        $"  \"use_rslora\": {(rslora ? "true" : "false")}\n" +
        "}";

    // (module, K, N, r): q 12→12 and v 12→8 at r 4, down 10→12 at rank_pattern's r 2.
    private static readonly (string Module, int K, int N, int R)[] Shapes = [(Q, 12, 12, 4), (V, 12, 8, 4), (Down, 10, 12, 2)];

    private static Dictionary<string, (float[] A, float[] B)> WriteAdapter(string dir, Seeded seed, string dtype, bool rslora)
    {
        var factors = new Dictionary<string, (float[] A, float[] B)>();
        var tensors = new List<OwnerSafetensors.Tensor>();
        foreach (var (module, k, n, r) in Shapes)
        {
            var a = Representable(seed.Uniform(r * k, -0.5f, 0.5f), dtype);
            var b = Representable(seed.Uniform(n * r, -0.5f, 0.5f), dtype);
            factors[module] = (a, b);
            tensors.Add(new($"base_model.model.{module}.lora_A.weight", dtype, [r, k], Encode(a, dtype)));
            tensors.Add(new($"base_model.model.{module}.lora_B.weight", dtype, [n, r], Encode(b, dtype)));
        }
        File.WriteAllBytes(Path.Combine(dir, "adapter_model.safetensors"), OwnerSafetensors.Bytes(tensors));
        File.WriteAllText(Path.Combine(dir, "adapter_config.json"), ConfigText(rslora));
        return factors;
    }

    // Values exactly representable in the file's dtype, so the expected host values are exact.
    private static float[] Representable(float[] v, string dtype) => dtype switch
    {
        "F16" => v.Select(x => (float)(System.Half)x).ToArray(),
        "BF16" => v.Select(x => BitConverter.UInt32BitsToSingle(BitConverter.SingleToUInt32Bits(x) & 0xFFFF0000u)).ToArray(),
        _ => v,
    };

    private static byte[] Encode(float[] v, string dtype) => dtype switch
    {
        "F16" => OwnerSafetensors.U16(v.Select(x => BitConverter.HalfToUInt16Bits((System.Half)x)).ToArray()),
        "BF16" => OwnerSafetensors.U16(v.Select(x => (ushort)(BitConverter.SingleToUInt32Bits(x) >> 16)).ToArray()),
        _ => OwnerSafetensors.F32(v),
    };

    private static void AssertSameFiles(string expectedDir, string actualDir)
    {
        foreach (var name in new[] { "adapter_model.safetensors", "adapter_config.json" })
            Assert.True(File.ReadAllBytes(Path.Combine(expectedDir, name)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(actualDir, name))),
                $"{name} differs after load + save:\n{Encoding.UTF8.GetString(File.ReadAllBytes(Path.Combine(actualDir, name)))}");
    }

    [Fact]
    public void F32AdapterLoadsWithPeftScalingAndSavesBackByteForByte()
    {
        var seed = Seeded.Create();
        using var dir = new OwnerSafetensors.TempDir();
        var factors = WriteAdapter(dir.Path, seed, "F32", rslora: false);
        var adapter = PeftLoraAdapter<float>.Load(dir.Path);

        Assert.Equal([Q, V, Down], adapter.Modules.Select(m => m.Module).Order(StringComparer.Ordinal).ToArray());
        Assert.Equal("base_model.model.", adapter.KeyPrefix);
        foreach (var (module, k, n, r) in Shapes)
        {
            var m = adapter[module];
            Assert.Equal((k, n, r), (m.InFeatures, m.OutFeatures, m.Adapter.Rank));
            Assert.Equal(factors[module].A, m.Adapter.A);
            Assert.Equal(factors[module].B, m.Adapter.B);
        }
        // PEFT: scaling = lora_alpha / r, with alpha_pattern / rank_pattern for down_proj (6 / 2).
        Assert.Equal(16f / 4f, adapter[Q].Adapter.Scale);
        Assert.Equal(16f / 4f, adapter[V].Adapter.Scale);
        Assert.Equal(6f / 2f, adapter[Down].Adapter.Scale);

        using var saved = new OwnerSafetensors.TempDir();
        adapter.Save(saved.Path);
        AssertSameFiles(dir.Path, saved.Path);
    }

    [Fact]
    public void RsLoraScalesByAlphaOverRootR()
    {
        var seed = Seeded.Create();
        using var dir = new OwnerSafetensors.TempDir();
        WriteAdapter(dir.Path, seed, "F32", rslora: true);
        var adapter = PeftLoraAdapter<float>.Load(dir.Path);
        Assert.Equal((float)(16 / Math.Sqrt(4)), adapter[Q].Adapter.Scale);
        Assert.Equal((float)(6 / Math.Sqrt(2)), adapter[Down].Adapter.Scale);
        Assert.True(adapter.Config.UseRslora);
    }

    [Fact]
    public void HalfAndBf16AdaptersRoundTripInTheirOwnDtype()
    {
        var seed = Seeded.Create();
        using (var dir = new OwnerSafetensors.TempDir())
        {
            var factors = WriteAdapter(dir.Path, seed, "F16", rslora: false);
            var adapter = PeftLoraAdapter<DeviceHalf>.Load(dir.Path);
            Assert.Equal(factors[V].A, adapter[V].Adapter.A.Select(h => Fp16.ToFloat(Fp16.Bits(h))).ToArray());
            using var saved = new OwnerSafetensors.TempDir();
            adapter.Save(saved.Path);
            AssertSameFiles(dir.Path, saved.Path);
        }
        using (var dir = new OwnerSafetensors.TempDir())
        {
            var factors = WriteAdapter(dir.Path, seed, "BF16", rslora: false);
            var adapter = PeftLoraAdapter<BFloat16>.Load(dir.Path);
            Assert.Equal(factors[Down].B, adapter[Down].Adapter.B.Select(b => b.ToFloat()).ToArray());
            using var saved = new OwnerSafetensors.TempDir();
            adapter.Save(saved.Path);
            AssertSameFiles(dir.Path, saved.Path);

            // An F32 reader converts the bf16 factors exactly (widening).
            var wide = PeftLoraAdapter<float>.Load(dir.Path);
            Assert.Equal(factors[Q].A, wide[Q].Adapter.A);
        }
    }

    [Fact]
    public void TwoAdaptersOfOneModuleServeAMultiAdapterBatch()
    {
        var seed = Seeded.Create();
        var device = Devices.CpuSmall;
        using var d1 = new OwnerSafetensors.TempDir();
        using var d2 = new OwnerSafetensors.TempDir();
        var f1 = WriteAdapter(d1.Path, seed, "BF16", rslora: false);
        var f2 = WriteAdapter(d2.Path, seed, "BF16", rslora: true);
        var a1 = PeftLoraAdapter<BFloat16>.Load(d1.Path);
        var a2 = PeftLoraAdapter<BFloat16>.Load(d2.Path);
        using var set = PeftLoraAdapter<BFloat16>.CreateSet(device, V, [a1, a2]);
        Assert.Equal((12, 8, 2), (set.InFeatures, set.OutFeatures, set.Count));
        Assert.Equal(4f, set.Scale(0));
        Assert.Equal(8f, set.Scale(1)); // 16 / √4

        // y[m] += scale_a · B_a (A_a x[m]) in f64 from the factors written to the files.
        const int k = 12, n = 8, r = 4, m = 3;
        int[] rows = [1, 0, 1];
        var x = Representable(seed.Uniform(m * k, -1, 1), "BF16");
        var y0 = Representable(seed.Uniform(m * n, -1, 1), "BF16");
        using var xd = device.Upload(x.Select(BFloat16.FromFloat).ToArray(), m, k);
        using var yd = device.Upload(y0.Select(BFloat16.FromFloat).ToArray(), m, n);
        using var batch = LoraBatch.FromTokens(device, rows);
        Kernels.Lora.Lora.Bgmv<BFloat16>(xd, set, batch, yd);
        var expected = new double[m * n];
        for (int i = 0; i < m; i++)
        {
            var (a, b) = rows[i] == 0 ? f1[V] : f2[V];
            double scale = rows[i] == 0 ? 4 : 8;
            var s = new double[r];
            for (int j = 0; j < r; j++)
                for (int c = 0; c < k; c++) s[j] += (double)a[j * k + c] * x[i * k + c];
            for (int o = 0; o < n; o++)
            {
                double acc = 0;
                for (int j = 0; j < r; j++) acc += (double)b[o * r + j] * s[j];
                expected[i * n + o] = y0[i * n + o] + scale * acc;
            }
        }
        Compare.Close(yd.ToArray().Select(v => v.ToFloat()).ToArray(), expected, Compare.BoundFor(ElementType.BFloat16), "BGMV on PEFT adapters", seed);

        // Back from the device into PEFT's layout: the same bytes as adapter 2's file for that module's tensors.
        var back = PeftLoraAdapter<BFloat16>.FromAdapterSets(a2.Config, [(V, set, 1)]);
        Assert.Equal(f2[V].A, back[V].Adapter.A.Select(v => v.ToFloat()).ToArray());
        Assert.Equal(f2[V].B, back[V].Adapter.B.Select(v => v.ToFloat()).ToArray());
        Assert.Throws<ArgumentException>(() => PeftLoraAdapter<BFloat16>.FromAdapterSets(a1.Config, [(V, set, 1)])); // scale 8 ≠ 16/4
    }

    [Fact]
    public void CreatedAdapterSavesPeftsLayout()
    {
        var seed = Seeded.Create();
        var a = seed.Uniform(2 * 3, -1, 1);
        var b = seed.Uniform(5 * 2, -1, 1);
        var config = PeftLoraConfig.Create(2, 8, useRslora: false, ["q_proj"]);
        var adapter = PeftLoraAdapter<float>.Create(config, [new PeftLoraModule<float>("model.q_proj", 3, 5, new LoraAdapter<float>(2, 4f, a, b))]);
        using var dir = new OwnerSafetensors.TempDir();
        adapter.Save(dir.Path);
        var expected = OwnerSafetensors.Bytes([
            new("base_model.model.model.q_proj.lora_A.weight", "F32", [2, 3], OwnerSafetensors.F32(a)),
            new("base_model.model.model.q_proj.lora_B.weight", "F32", [5, 2], OwnerSafetensors.F32(b))]);
        Assert.Equal(expected, File.ReadAllBytes(dir.File("adapter_model.safetensors")));
        Assert.Equal(
            "{\n  \"alpha_pattern\": {},\n  \"bias\": \"none\",\n  \"lora_alpha\": 8,\n  \"lora_dropout\": 0.0,\n  \"peft_type\": \"LORA\",\n" +
            "  \"r\": 2,\n  \"rank_pattern\": {},\n  \"target_modules\": [\n    \"q_proj\"\n  ],\n  \"task_type\": null,\n  \"use_dora\": false,\n" +
            "  \"use_rslora\": false\n}", File.ReadAllText(dir.File("adapter_config.json")));
        Assert.Throws<ArgumentException>(() => PeftLoraAdapter<float>.Create(config, [new PeftLoraModule<float>("model.q_proj", 3, 5, new LoraAdapter<float>(2, 1f, a, b))]));
    }

    [Fact]
    public void MalformedAdaptersNameTheFileAndTheTensor()
    {
        var seed = Seeded.Create();
        using var dir = new OwnerSafetensors.TempDir();
        string weights = dir.File("adapter_model.safetensors"), config = dir.File("adapter_config.json");
        WriteAdapter(dir.Path, seed, "F32", rslora: false);
        void Write(params OwnerSafetensors.Tensor[] t) => File.WriteAllBytes(weights, OwnerSafetensors.Bytes(t));
        var a = new OwnerSafetensors.Tensor($"base_model.model.{Q}.lora_A.weight", "F32", [4, 12], new byte[4 * 12 * 4]);
        var b = new OwnerSafetensors.Tensor($"base_model.model.{Q}.lora_B.weight", "F32", [12, 4], new byte[12 * 4 * 4]);

        Write(a); // lone A
        var ex = Assert.Throws<InvalidDataException>(() => PeftLoraAdapter<float>.Load(dir.Path));
        Assert.Contains(weights, ex.Message);
        Assert.Contains(Q, ex.Message);

        Write(a, b with { Shape = [12, 3], Data = new byte[12 * 3 * 4] }); // B's rank differs from A's
        ex = Assert.Throws<InvalidDataException>(() => PeftLoraAdapter<float>.Load(dir.Path));
        Assert.Contains("lora_B.weight", ex.Message);

        Write(a with { Shape = [2, 12], Data = new byte[2 * 12 * 4] }, b with { Shape = [12, 2], Data = new byte[12 * 2 * 4] }); // r 2 ≠ config's 4
        ex = Assert.Throws<InvalidDataException>(() => PeftLoraAdapter<float>.Load(dir.Path));
        Assert.Contains("r = 4", ex.Message);

        Write(a, b, new($"base_model.model.{Q}.lora_magnitude_vector", "F32", [12], new byte[48])); // DoRA
        ex = Assert.Throws<InvalidDataException>(() => PeftLoraAdapter<float>.Load(dir.Path));
        Assert.Contains("lora_magnitude_vector", ex.Message);

        Write(a with { DType = "I32" }, b);
        ex = Assert.Throws<InvalidDataException>(() => PeftLoraAdapter<float>.Load(dir.Path));
        Assert.Contains("I32", ex.Message);

        Write(a, b);
        Assert.Equal(4, PeftLoraAdapter<float>.Load(dir.Path)[Q].Adapter.Rank);
        File.WriteAllText(config, ConfigText(false).Replace("\"use_dora\": false", "\"use_dora\": true"));
        ex = Assert.Throws<InvalidDataException>(() => PeftLoraAdapter<float>.Load(dir.Path));
        Assert.Contains(config, ex.Message);
        Assert.Contains("use_dora", ex.Message);
        File.WriteAllText(config, ConfigText(false).Replace("\"r\": 4", "\"r\": \"four\""));
        ex = Assert.Throws<InvalidDataException>(() => PeftLoraAdapter<float>.Load(dir.Path));
        Assert.Contains("r is \"four\"", ex.Message);
        File.WriteAllText(config, "{ not json");
        Assert.Throws<InvalidDataException>(() => PeftLoraAdapter<float>.Load(dir.Path));
    }
}
