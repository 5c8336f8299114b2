using System.Text;
using Kernels.Quantization;
using Kernels.Tensors;
using Kernels.Tests.Foundation;
using Kernels.Tests.Harness;
using Xunit;

namespace Kernels.Tests.Quantization;

/// <summary>
/// bitsandbytes 4-bit weights in the layout transformers saves (Linear4bit._save_to_state_dict + QuantState.as_dict(packed=True)
/// through safetensors), built here independently: loaded into BlockwiseQuantized, decoded against an independent
/// decode, written back byte for byte. Plus the 8-bit quantize_blockwise(nested=True) state.
/// </summary>
public class BitsAndBytesCheckpointTests
{
    private const string Down = "model.layers.0.mlp.down_proj", Qp = "model.layers.0.self_attn.q_proj";

    // bitsandbytes/functional.py get_4bit_type: the NF4 literals (Python floats → fp32) and the FP4 list divided by its max
    // in fp32 (its "-0" is the Python int 0, so entry 8 is +0).
    private static readonly float[] Nf4 = new double[]
    {
        -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635, -0.18477343022823334,
        -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
        0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
    }.Select(d => (float)d).ToArray();

    private static readonly float[] Fp4 = new float[] { 0, 0.0625f, 8, 12, 4, 6, 2, 3, 0, -0.0625f, -8, -12, -4, -6, -2, -3 }.Select(v => v / 12f).ToArray();

    private sealed record Layer(byte[] Data, float[] Absmax);

    private static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s);

    // Builds the checkpoint; returns the tensors and the decoded fp32 weights of both layers (independent decode).
    private static (OwnerSafetensors.Tensor[] Tensors, float[] Down, float[] Q) Checkpoint(Seeded seed)
    {
        var rng = seed.Random;
        // down_proj: NF4, nested, B = 32, shape [65, 130] → 8450 elements, 265 blocks, 2 nested blocks.
        const int nDown = 65 * 130, bDown = 32, blocksDown = (nDown + bDown - 1) / bDown;
        var dataDown = new byte[(nDown + 1) / 2];
        rng.NextBytes(dataDown);
        var qabsmax = new byte[blocksDown];
        rng.NextBytes(qabsmax);
        var nestedAbsmax = seed.Uniform(2, 0.01f, 0.05f);
        const float offset = 0.03125f;
        var dynamic = CodeBookTests.DynamicRecipe(signed: true);
        var storedDynamic = (float[])dynamic.Clone();
        storedDynamic[200] = BitConverter.Int32BitsToSingle(BitConverter.SingleToInt32Bits(storedDynamic[200]) + 1); // another build's last bit
        var down = new float[nDown];
        for (int i = 0; i < nDown; i++)
        {
            int b = i / bDown;
            float absmax = dynamic[qabsmax[b]] * nestedAbsmax[b / 256] + offset;
            int nibble = i % 2 == 0 ? dataDown[i / 2] >> 4 : dataDown[i / 2] & 15;
            down[i] = Nf4[nibble] * absmax;
        }
        // q_proj: FP4, plain absmax, B = 32, shape [7, 9] → 63 elements (odd: the last byte's low nibble is padding).
        const int nQ = 63, bQ = 32;
        var dataQ = new byte[32];
        rng.NextBytes(dataQ);
        var absmaxQ = seed.Uniform(2, 0.5f, 2f);
        var q = new float[nQ];
        for (int i = 0; i < nQ; i++) q[i] = Fp4[i % 2 == 0 ? dataQ[i / 2] >> 4 : dataQ[i / 2] & 15] * absmaxQ[i / bQ];

        var tensors = new OwnerSafetensors.Tensor[]
        {
            new($"{Down}.weight", "U8", [dataDown.Length, 1], dataDown),
            new($"{Down}.weight.absmax", "U8", [blocksDown], qabsmax),
            new($"{Down}.weight.quant_map", "F32", [16], OwnerSafetensors.F32(Nf4)),
            new($"{Down}.weight.nested_absmax", "F32", [2], OwnerSafetensors.F32(nestedAbsmax)),
            new($"{Down}.weight.nested_quant_map", "F32", [256], OwnerSafetensors.F32(storedDynamic)),
            new($"{Down}.weight.quant_state.bitsandbytes__nf4", "U8", [0], Utf8(
                "{\"quant_type\": \"nf4\", \"blocksize\": 32, \"dtype\": \"bfloat16\", \"shape\": [65, 130], \"nested_blocksize\": 256, \"nested_dtype\": \"float32\", \"nested_offset\": 0.03125}")),
            new($"{Qp}.weight", "U8", [32, 1], dataQ),
            new($"{Qp}.weight.absmax", "F32", [2], OwnerSafetensors.F32(absmaxQ)),
            new($"{Qp}.weight.quant_map", "F32", [16], OwnerSafetensors.F32(Fp4)),
            new($"{Qp}.weight.quant_state.bitsandbytes__fp4", "U8", [0], Utf8("{\"quant_type\": \"fp4\", \"blocksize\": 32, \"dtype\": \"float16\", \"shape\": [7, 9]}")),
            new("model.norm.weight", "F16", [9], OwnerSafetensors.U16(Enumerable.Range(0, 9).Select(i => (ushort)(0x3C00 + i)).ToArray())),
            new("lm_head.weight", "BF16", [4, 3], OwnerSafetensors.U16(Enumerable.Range(0, 12).Select(i => (ushort)(0x3F80 + i)).ToArray())),
        };
        tensors = tensors.Select(t => t.Shape is [0] ? t with { Shape = [t.Data.Length] } : t).ToArray();
        return (tensors, down, q);
    }

    private static float[] Dequantize(BlockwiseQuantized w)
    {
        using var output = w.Device.Allocate<float>((nint)w.Length);
        w.Dequantize(output);
        return output.ToArray();
    }

    [Fact]
    public void FourBitCheckpointLoadsDecodesAndSavesBackByteForByte()
    {
        var seed = Seeded.Create();
        var device = Devices.CpuSmall;
        var (tensors, down, q) = Checkpoint(seed);
        using var dir = new OwnerSafetensors.TempDir();
        string path = dir.File("model.safetensors");
        File.WriteAllBytes(path, OwnerSafetensors.Bytes(tensors));
        var file = SafetensorsFile.Open(path);

        Assert.Equal([Down, Qp], BitsAndBytesCheckpoint.Modules(file));
        var downState = BitsAndBytesCheckpoint.Read(file, Down);
        var qState = BitsAndBytesCheckpoint.Read(file, Qp);
        Assert.True(downState.IsNested);
        Assert.Equal((256, 0.03125, "bfloat16"), (downState.NestedBlockSize, downState.NestedOffset, downState.DType));
        Assert.Equal([65L, 130], downState.Shape!);

        using (var w = downState.Upload(device))
        {
            Assert.Equal((CodeBook.NF4, 32, 65L * 130, ElementType.BFloat16), (w.Map, w.BlockSize, w.Length, w.ElementType));
            Compare.Exact<float>(Dequantize(w), down, "nested NF4 decode", seed);
            // Back from the device: every tensor as the file has it except nested_quant_map, which becomes the library's table.
            var back = BitsAndBytesQuantState.FromBlockwise(w, "bfloat16", [65, 130]);
            var expected = tensors.Where(t => t.Name.StartsWith(Down, StringComparison.Ordinal) && !t.Name.EndsWith("nested_quant_map", StringComparison.Ordinal));
            var actual = BitsAndBytesCheckpoint.Tensors(Down, back).ToDictionary(t => t.Name);
            foreach (var t in expected) Assert.Equal(t.Data, actual[t.Name].Data);
            Assert.Equal(OwnerSafetensors.F32(CodeBookTests.DynamicRecipe(true)), actual[$"{Down}.weight.nested_quant_map"].Data);
        }
        using (var w = qState.Upload(device))
        {
            Assert.Equal((CodeBook.FP4, ElementType.Float16), (w.Map, w.ElementType));
            Compare.Exact<float>(Dequantize(w), q, "FP4 decode", seed);
            var back = BitsAndBytesQuantState.FromBlockwise(w, "float16", [7, 9]);
            Assert.Equal(tensors.Where(t => t.Name.StartsWith(Qp, StringComparison.Ordinal)).Select(t => t.Data),
                BitsAndBytesCheckpoint.Tensors(Qp, back).Select(t => t.Data)); // FP4's +0 at code 8 included
        }

        // Save: the two states plus the checkpoint's other tensors, copied as they are.
        var quantized = new[] { Down, Qp }.SelectMany(m => BitsAndBytesCheckpoint.TensorNames(file, m)).ToHashSet();
        var others = file.Entries.Values.Where(e => !quantized.Contains(e.Name)).Select(e => new SafetensorsFile.Tensor(e.Name, e.DType, e.Shape, file.ReadBytes(e.Name)));
        string saved = dir.File("saved.safetensors");
        SafetensorsFile.WriteSorted(saved, BitsAndBytesCheckpoint.Tensors(Down, downState).Concat(BitsAndBytesCheckpoint.Tensors(Qp, qState)).Concat(others),
            new Dictionary<string, string> { ["format"] = "pt" });
        Assert.True(File.ReadAllBytes(path).AsSpan().SequenceEqual(File.ReadAllBytes(saved)), "the saved checkpoint differs from the original");
    }

    [Fact]
    public void LibraryQuantizedWeightsSurviveTheFileFormat()
    {
        var seed = Seeded.Create();
        var device = Devices.CpuSmall;
        var x = seed.Normal(33 * 40);
        using var input = device.Upload<float>(x);
        using var w = BlockwiseQuantized.Quantize(input, CodeBook.NF4, 64, nested: true);
        var state = BitsAndBytesQuantState.FromBlockwise(w, "float32", [33, 40]);
        using var dir = new OwnerSafetensors.TempDir();
        SafetensorsFile.WriteSorted(dir.File("w.safetensors"), BitsAndBytesCheckpoint.Tensors("layer", state), new Dictionary<string, string> { ["format"] = "pt" });
        using var back = BitsAndBytesCheckpoint.Read(SafetensorsFile.Open(dir.File("w.safetensors")), "layer").Upload(device);
        Compare.Exact<float>(Dequantize(back), Dequantize(w), "NF4 through the file", seed);
        Assert.Equal((float)state.NestedOffset, w.NestedOffset!.ToArray()[0]);
    }

    [Fact]
    public void EightBitNestedStateLoadsAt256AndNamesTheBlockSizeLimitOtherwise()
    {
        // quantize_blockwise(A, blocksize=B, nested=True): uint8 codes in A's shape, uint8 absmax codes, and a second level
        // quantized with the dynamic map in blocks of B (the first level's block size).
        var seed = Seeded.Create();
        var rng = seed.Random;
        var dynamic = CodeBookTests.DynamicRecipe(true);
        BitsAndBytesQuantState State(int blockSize, int n)
        {
            int blocks = (n + blockSize - 1) / blockSize;
            var data = new byte[n];
            rng.NextBytes(data);
            var q = new byte[blocks];
            rng.NextBytes(q);
            return new BitsAndBytesQuantState
            {
                Data = data, DataShape = [n], QuantType = null, BlockSize = blockSize, DType = "float32",
                QuantizedAbsmax = q, QuantMap = dynamic, NestedAbsmax = seed.Uniform((blocks + blockSize - 1) / blockSize, 0.5f, 1f),
                NestedBlockSize = blockSize, NestedQuantMap = dynamic, NestedDType = "float32", NestedOffset = 0.25,
            };
        }
        var s256 = State(256, 600);
        using (var w = s256.Upload(Devices.CpuSmall))
        {
            var expected = new float[600];
            for (int i = 0; i < 600; i++)
            {
                int b = i / 256;
                expected[i] = dynamic[s256.Data[i]] * (dynamic[s256.QuantizedAbsmax![b]] * s256.NestedAbsmax![b / 256] + 0.25f);
            }
            Assert.Equal(CodeBook.DynamicSigned, w.Map);
            Compare.Exact<float>(Dequantize(w), expected, "8-bit nested decode", seed);
            var back = BitsAndBytesQuantState.FromBlockwise(w, "float32", null);
            Assert.Equal(s256.Data, back.Data);
            Assert.Equal(s256.QuantizedAbsmax, back.QuantizedAbsmax);
            Assert.Equal(s256.NestedAbsmax, back.NestedAbsmax);
            Assert.Throws<ArgumentException>(() => BitsAndBytesCheckpoint.Tensors("m", back)); // bitsandbytes packs 4-bit states only
        }
        var ex = Assert.Throws<NotSupportedException>(() => State(64, 600).Upload(Devices.CpuSmall));
        Assert.Contains("nested_blocksize is 64", ex.Message);
        Assert.Contains("256", ex.Message);
    }

    private static OwnerSafetensors.Tensor Json(OwnerSafetensors.Tensor t, string text) => t with { Data = Utf8(text), Shape = [Utf8(text).Length] };

    [Fact]
    public void MalformedStatesNameTheFileAndTheTensor()
    {
        var seed = Seeded.Create();
        var (tensors, _, _) = Checkpoint(seed);
        using var dir = new OwnerSafetensors.TempDir();
        string path = dir.File("bad.safetensors");
        InvalidDataException Fails(string module, Func<OwnerSafetensors.Tensor, OwnerSafetensors.Tensor?> edit)
        {
            File.WriteAllBytes(path, OwnerSafetensors.Bytes(tensors.Select(edit).Where(t => t is not null)!));
            var ex = Assert.Throws<InvalidDataException>(() => BitsAndBytesCheckpoint.Read(SafetensorsFile.Open(path), module));
            Assert.Contains(path, ex.Message);
            return ex;
        }

        var e = Fails(Qp, t => t.Name == $"{Qp}.weight.absmax" ? null : t);
        Assert.Contains($"{Qp}.weight.absmax", e.Message);
        e = Fails(Qp, t => t.Name == $"{Qp}.weight.absmax" ? t with { Shape = [1], Data = t.Data[..4] } : t);
        Assert.Contains("absmax has 1", e.Message);
        e = Fails(Qp, t => t.Name == $"{Qp}.weight" ? t with { Shape = [31, 1], Data = t.Data[..31] } : t);
        Assert.Contains("31 bytes", e.Message);
        e = Fails(Qp, t => t.Name == $"{Qp}.weight.quant_map" ? t with { Data = OwnerSafetensors.F32(Nf4) } : t);
        Assert.Contains("quant_map[", e.Message);
        e = Fails(Down, t => t.Name == $"{Down}.weight.nested_quant_map" ? t with { Data = OwnerSafetensors.F32(Enumerable.Repeat(0.5f, 256).ToArray()) } : t);
        Assert.Contains("nested_quant_map[", e.Message);
        e = Fails(Qp, t => t.Name.EndsWith("bitsandbytes__fp4", StringComparison.Ordinal)
            ? Json(t, "{\"quant_type\": \"fp4\", \"blocksize\": \"32\", \"dtype\": \"float16\", \"shape\": [7, 9]}") : t);
        Assert.Contains("'blocksize'", e.Message);
        e = Fails(Qp, t => t.Name.EndsWith("bitsandbytes__fp4", StringComparison.Ordinal) ? Json(t, "{oops") : t);
        Assert.Contains("not valid JSON", e.Message);
        e = Fails(Down, t => t.Name == $"{Down}.weight.absmax" ? t with { DType = "F32", Shape = [t.Data.Length / 4], Data = t.Data[..(t.Data.Length / 4 * 4)] } : t);
        Assert.Contains("expected U8", e.Message);
        e = Fails(Down, t => t.Name == $"{Down}.weight.nested_absmax" ? null : t);
        Assert.Contains("nested_absmax", e.Message);
    }
}
