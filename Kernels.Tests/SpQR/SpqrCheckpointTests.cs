using Kernels.SpQR;
using Kernels.Tensors;
using Kernels.Tests.Harness;
using Xunit;

namespace Kernels.Tests.SpQR;

public class SpqrCheckpointTests
{
    [Fact]
    public void WritesAndReadsBackSafetensorsLayers()
    {
        var seed = Seeded.Create();
        var layers = new Dictionary<string, SpqrPacked>
        {
            ["model.layers.0.self_attn.q_proj"] = SpqrTestData.Random(32, 48, seed).Packed,
            ["model.layers.0.mlp.down_proj"] = SpqrTestData.Random(21, 45, seed, SpqrSparseLayout.Ptcsr).Packed,
        };
        string path = Path.Combine(Path.GetTempPath(), $"spqr-{Guid.NewGuid():N}.safetensors");
        try
        {
            SpqrCheckpoint.Write(path, layers);
            var bytes = File.ReadAllBytes(path);
            long headerLength = BitConverter.ToInt64(bytes, 0);
            Assert.Equal(0, (8 + headerLength) % 8);
            Assert.Equal((byte)'{', bytes[8]);

            var file = SafetensorsFile.Open(path);
            Assert.Equal(layers.Keys.Order(), SpqrCheckpoint.Modules(file));
            Assert.Equal("I64", file.Entries["model.layers.0.self_attn.q_proj.dense_weights"].DType);
            Assert.Equal("I32", file.Entries["model.layers.0.self_attn.q_proj.col_vals"].DType);
            var config = SpqrConfig.Parse(new System.Text.Json.Nodes.JsonObject { ["quantization_config"] = SpqrConfig.ToJson(layers) }.ToJsonString());
            foreach (var (module, p) in layers)
            {
                var back = SpqrCheckpoint.ReadLayer(file, module, config);
                Assert.Equal((p.Rows, p.Columns, p.Layout), (back.Rows, back.Columns, back.Layout));
                Compare.Exact<ulong>(back.DenseWeights, p.DenseWeights, "dense_weights", seed);
                Compare.Exact<int>(back.RowOffsets, p.RowOffsets, "row_offsets", seed);
                Compare.Exact<uint>(back.ColVals, p.ColVals, "col_vals", seed);
                Compare.Exact<uint>(back.InPerm, p.InPerm, "in_perm", seed);
            }
            // A config whose shapes disagree with the file is rejected.
            var wrong = new Dictionary<string, long> { ["model.layers.0.self_attn.q_proj.dense_weights.shape"] = 1 };
            Assert.Throws<InvalidDataException>(() => SpqrCheckpoint.ReadLayer(file, "model.layers.0.self_attn.q_proj", config with { Shapes = wrong }));
            Assert.Throws<InvalidDataException>(() => SpqrCheckpoint.ReadLayer(file, "model.layers.1.mlp.up_proj"));
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void InfersTheShapeOfAHuggingFaceStyleLayerWithoutMetadata()
    {
        var seed = Seeded.Create();
        var p = SpqrTestData.Random(32, 64, seed).Packed;
        string path = Path.Combine(Path.GetTempPath(), $"spqr-{Guid.NewGuid():N}.safetensors");
        try
        {
            static byte[] B<T>(T[] a) where T : unmanaged => System.Runtime.InteropServices.MemoryMarshal.AsBytes(a.AsSpan()).ToArray();
            SafetensorsFile.Write(path,
            [
                new("m.dense_weights", "I64", [p.DenseWeights.Length], B(p.DenseWeights)),
                new("m.row_offsets", "I32", [p.RowOffsets.Length], B(p.RowOffsets)),
                new("m.col_vals", "I32", [p.ColVals.Length], B(p.ColVals)),
                new("m.in_perm", "I32", [p.InPerm.Length], B(p.InPerm)),
            ]);
            var back = SpqrCheckpoint.ReadLayer(SafetensorsFile.Open(path), "m");
            Assert.Equal((32, 64), (back.Rows, back.Columns));
            Compare.Exact<ulong>(back.DenseWeights, p.DenseWeights, "dense_weights", seed);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void RejectsTruncatedFiles()
    {
        string path = Path.Combine(Path.GetTempPath(), $"spqr-{Guid.NewGuid():N}.safetensors");
        try
        {
            SafetensorsFile.Write(path, [new("t", "I32", [4], new byte[16])]);
            var bytes = File.ReadAllBytes(path);
            File.WriteAllBytes(path, bytes[..^4]);
            Assert.Throws<InvalidDataException>(() => SafetensorsFile.Open(path));
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void ChecksTheQuantizationConfig()
    {
        const string ok = """{"quantization_config": {"quant_method": "spqr", "bits": 3, "beta1": 16, "beta2": 16, "shapes": {"a.dense_weights.shape": 4096}}}""";
        var c = SpqrConfig.Parse(ok);
        Assert.Equal((3, 16, 16), (c.Bits, c.Beta1, c.Beta2));
        Assert.Equal(4096, c.Shapes["a.dense_weights.shape"]);
        Assert.Equal(3, SpqrConfig.Parse("""{"quant_method": "spqr", "bits": 3, "beta1": 16, "beta2": 16}""").Bits);
        Assert.Contains("bits", Assert.Throws<ArgumentException>(() => SpqrConfig.Parse(ok.Replace("\"bits\": 3", "\"bits\": 4"))).Message);
        Assert.Contains("tile height", Assert.Throws<ArgumentException>(() => SpqrConfig.Parse(ok.Replace("\"beta1\": 16", "\"beta1\": 8"))).Message);
        Assert.Contains("tile width", Assert.Throws<ArgumentException>(() => SpqrConfig.Parse(ok.Replace("\"beta2\": 16", "\"beta2\": 32"))).Message);
        Assert.Throws<ArgumentException>(() => SpqrConfig.Parse(ok.Replace("spqr", "gptq")));
        Assert.Throws<ArgumentException>(() => SpqrConfig.Parse("""{"quant_method": "spqr", "bits": 3, "beta1": 16}"""));
    }
}
