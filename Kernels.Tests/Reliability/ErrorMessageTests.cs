using System.Runtime.InteropServices;
using System.Text;
using Kernels.LowRank;
using Kernels.Lora;
using Kernels.Quantization;
using Kernels.SpQR;
using Kernels.Tensors;
using Kernels.Tests.Harness;
using Kernels.Tests.Lora;
using Kernels.Tests.SpQR;
using Xunit;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Tests.Reliability;

/// <summary>Errors that say what is wrong: the right exception type, the right parameter, the file and the key.</summary>
public class ErrorMessageTests
{
    [Fact]
    public void AnAllocationTooLargeToCountIsAnArgumentError()
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => Devices.CpuSmall.Allocate<float>((nint)1 << 40, (nint)1 << 40));
        Assert.Equal("lengths", ex.ParamName);
        Assert.Contains("[1099511627776, 1099511627776]", ex.Message);
    }

    [Fact]
    public void UploadNamesData() =>
        Assert.Equal("data", Assert.Throws<ArgumentException>(() => Devices.CpuSmall.Upload<float>(new float[5], 2, 3)).ParamName);

    private static string Temp() => Path.Combine(Path.GetTempPath(), $"rel-{Guid.NewGuid():N}.safetensors");

    private static void WriteRaw(string path, string header, int dataBytes = 0)
    {
        var h = Encoding.UTF8.GetBytes(header);
        using var s = File.Create(path);
        s.Write(BitConverter.GetBytes((ulong)h.Length));
        s.Write(h);
        s.Write(new byte[dataBytes]);
    }

    [Theory]
    [InlineData("not json at all", "not valid JSON")]
    [InlineData("""{"t": {"dtype": "I32", "shape": [2], "data_offsets": [0, 7.5]}}""", "'t' data_offsets[1]")]
    [InlineData("""{"t": {"dtype": "I32", "shape": [2], "data_offsets": [0]}}""", "'t' has no data_offsets array of 2")]
    [InlineData("""{"t": {"dtype": "I32", "shape": ["2"], "data_offsets": [0, 8]}}""", "'t' shape[0]")]
    [InlineData("""{"__metadata__": {"format": 5}, "t": {"dtype": "I32", "shape": [2], "data_offsets": [0, 8]}}""", "__metadata__ key 'format'")]
    [InlineData("""{"t": {"dtype": "Q7", "shape": [2], "data_offsets": [0, 8]}}""", "dtype 'Q7'")]
    public void CorruptSafetensorsHeadersNameTheFileAndTheKey(string header, string expected)
    {
        string path = Temp();
        try
        {
            WriteRaw(path, header, 8);
            var ex = Assert.Throws<InvalidDataException>(() => SafetensorsFile.Open(path));
            Assert.Contains(path, ex.Message);
            Assert.Contains(expected, ex.Message);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void ATinyFileIsNotASafetensorsFile()
    {
        string path = Temp();
        try
        {
            File.WriteAllBytes(path, [1, 2, 3]);
            var ex = Assert.Throws<InvalidDataException>(() => SafetensorsFile.Open(path));
            Assert.Contains(path, ex.Message);
            Assert.Contains("too short", ex.Message);
        }
        finally { File.Delete(path); }
    }

    private static byte[] B<T>(T[] a) where T : unmanaged => MemoryMarshal.AsBytes(a.AsSpan()).ToArray();

    private static void WriteLayer(string path, SpqrPacked p, string? shape, string colValsType = "I32") =>
        SafetensorsFile.Write(path,
        [
            new("m.dense_weights", "I64", [p.DenseWeights.Length], B(p.DenseWeights)),
            new("m.row_offsets", "I32", [p.RowOffsets.Length], B(p.RowOffsets)),
            new("m.col_vals", colValsType, [p.ColVals.Length], B(p.ColVals)),
            new("m.in_perm", "I32", [p.InPerm.Length], B(p.InPerm)),
        ], shape is null ? null : new Dictionary<string, string> { ["m.spqr_shape"] = shape });

    [Theory]
    [InlineData("64")]
    [InlineData("abc,64")]
    [InlineData("32,64,1")]
    [InlineData("-32,64")]
    public void ABadSpqrShapeNamesTheFileAndTheEntry(string shape)
    {
        var (u, _) = SpqrTestData.Integer(32, 64, Seeded.Create());
        string path = Temp();
        try
        {
            WriteLayer(path, SpqrPacking.Pack(u), shape);
            var ex = Assert.Throws<InvalidDataException>(() => SpqrCheckpoint.ReadLayer(SafetensorsFile.Open(path), "m"));
            Assert.Contains(path, ex.Message);
            Assert.Contains("m.spqr_shape", ex.Message);
            Assert.Contains($"'{shape}'", ex.Message);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void AZeroOutlierLayerWithAnF32EmptyColValsLoads()
    {
        var seed = Seeded.Create();
        var (u, w) = SpqrTestData.Integer(32, 64, seed, outlierRate: 0);
        var p = SpqrPacking.Pack(u);
        Assert.Empty(p.ColVals);
        string path = Temp();
        try
        {
            WriteLayer(path, p, "32,64", colValsType: "F32"); // torch's default dtype for an empty tensor
            var back = SpqrCheckpoint.ReadLayer(SafetensorsFile.Open(path), "m");
            Assert.Empty(back.ColVals);
            var decoded = new System.Half[32 * 64];
            SpqrReference.Decode(back, decoded);
            Compare.Exact<float>(decoded.Select(h => (float)h).ToArray(), w, "decoded weights", seed);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void AZeroGradientHasNoSubspaceAndLeavesTheBasisAlone()
    {
        var device = Devices.CpuSmall;
        using var zero = device.Upload<float>(new float[24 * 16], 24, 16);
        var g = new WriteGuard();
        using var basis = g.Watch(device.Allocate<float>(24, 3), "basis");
        var ex = g.Rejects<ArgumentException>(() => Subspace.RandomizedSvd(zero, ProjectionSide.Left, 1, 4, 7, basis, new float[3]), "gradient",
            "RandomizedSvd of zero");
        Assert.Contains("zero", ex.Message);
        // WarmIterate reads the basis, so start from an orthonormal one (the first three unit vectors) and expect it back.
        var e = new float[24 * 3];
        for (int i = 0; i < 3; i++) e[i * 3 + i] = 1;
        using var warm = device.Upload<float>(e, 24, 3);
        Assert.Equal("gradient", Assert.Throws<ArgumentException>(() => Subspace.WarmIterate(zero, ProjectionSide.Left, 2, warm)).ParamName);
        Compare.Exact<float>(warm.ToArray(), e, "basis after a zero gradient");
        var nan = new float[24 * 16];
        nan[5] = float.NaN;
        using var bad = device.Upload<float>(nan, 24, 16);
        Assert.Contains("NaN", Assert.Throws<ArgumentException>(() => Subspace.RandomizedSvd(bad, ProjectionSide.Left, 1, 4, 7, basis, new float[3])).Message);
    }

    [Fact]
    public void TheWrongArgumentIsNamed()
    {
        var small = Devices.CpuSmall;
        // Dequantize: codes and absmax agree on 128 elements, the output has 100.
        using var codes = small.Allocate<byte>(128);
        using var absmax = small.Allocate<float>(2);
        using var output = small.Allocate<float>(100);
        Assert.Equal("output", Assert.Throws<ArgumentException>(() => Blockwise.Dequantize(codes, absmax, CodeBook.DynamicSigned, 64, output)).ParamName);

        // Subspace names its basis, BackProject its destination when projector and update agree.
        using var gradient = small.Allocate<float>(6, 5);
        using var basis = small.Allocate<float>(7, 2);
        Assert.Equal("basis", Assert.Throws<ArgumentException>(() => Subspace.WarmIterate(gradient, ProjectionSide.Left, 1, basis)).ParamName);
        using var p = small.Allocate<float>(6, 2);
        using var n = small.Allocate<float>(2, 5);
        using var update = small.Allocate<float>(6, 4);
        Assert.Equal("update", Assert.Throws<ArgumentException>(() => GaLore.BackProject(n, p, ProjectionSide.Left, 1f, update)).ParamName);

        // LoRA: a dy whose N disagrees with b and W; a Bgmv x whose K disagrees with the adapters.
        var device = Devices.CpuWarp32;
        const int m = 3, k = 8, nOut = 5, r = 2;
        using var dy = device.Allocate<DeviceHalf>(m, nOut + 1);
        using var x = device.Allocate<DeviceHalf>(m, k);
        using var w = device.Allocate<DeviceHalf>(nOut, k);
        using var a = device.Allocate<DeviceHalf>(r, k);
        using var b = device.Allocate<DeviceHalf>(nOut, r);
        using var s = device.Allocate<float>(m, r);
        using var ds = device.Allocate<float>(m, r);
        using var da = device.Allocate<float>(r, k);
        using var db = device.Allocate<float>(nOut, r);
        using var dx = device.Allocate<DeviceHalf>(m, k);
        Assert.Equal("dy", Assert.Throws<ArgumentException>(
            () => Kernels.Lora.Lora.Backward<DeviceHalf>(dy, x, w, a, b, s, 1f, default, ds, da, db, dx)).ParamName);
        var (typed, _) = LoraTestData.Adapters<DeviceHalf>(Seeded.Create(), k, nOut, 2);
        using var adapters = LoraAdapterSet<DeviceHalf>.Create(device, k, nOut, typed);
        using var batch = LoraBatch.FromTokens(device, [0, 0, 0]);
        using var xWide = device.Allocate<DeviceHalf>(m, k + 1);
        using var y = device.Allocate<DeviceHalf>(m, nOut);
        Assert.Equal("x", Assert.Throws<ArgumentException>(() => Kernels.Lora.Lora.Bgmv<DeviceHalf>(xWide, adapters, batch, y)).ParamName);
    }

    [Fact]
    public void ADeviceMismatchNamesTheOperandOnTheOtherDevice()
    {
        var home = Devices.CpuSmall;
        var away = Devices.CpuWarp32;
        using var codes = home.Allocate<byte>(128);
        using var absmax = home.Allocate<float>(2);
        using var output = away.Allocate<float>(128);
        Assert.Equal("output", Assert.Throws<ArgumentException>(() => Blockwise.Dequantize(codes, absmax, CodeBook.DynamicSigned, 64, output)).ParamName);

        using var state = Kernels.Optimizers.Optimizer8BitState.Create(home, Kernels.Optimizers.OptimizerKind.Adam, 64);
        using var grads = home.Allocate<float>(64);
        using var parameters = away.Allocate<float>(64);
        var settings = Kernels.Optimizers.OptimizerSettings.Defaults(Kernels.Optimizers.OptimizerKind.Adam, 1e-3f);
        Assert.Equal("parameters", Assert.Throws<ArgumentException>(
            () => Kernels.Optimizers.Optimizer8Bit.Step<float, float>(grads, state, settings, 1, parameters)).ParamName);

        using var n = home.Allocate<float>(2, 5);
        using var p = home.Allocate<float>(6, 2);
        using var update = away.Allocate<float>(6, 5);
        Assert.Equal("update", Assert.Throws<ArgumentException>(() => GaLore.BackProject(n, p, ProjectionSide.Left, 1f, update)).ParamName);
    }
}
