using Kernels.Lora;
using Kernels.Quantization;
using Kernels.Tensors;
using Kernels.Tests.Harness;
using Xunit;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Tests.Lora;

/// <summary>QLoRA: the base weight dequantized inside the engine equals dequantize-then-multiply.</summary>
public class LoraQuantizedTests
{
    private static readonly ComputeDeviceRef Device = new();

    public static TheoryData<string, int, bool, bool> Formats => new()
    {
        { "nf4", 64, true, false },          // QLoRA's default: NF4, B = 64, nested absmax
        { "dynamic-signed", 256, false, true }, // 8-bit, blocks straddling weight rows, bf16
        { "fp4", 32, false, false },
    };

    private static CodeBook Book(string name) => CodeBook.All.First(b => b.Name == name);

    [Theory]
    [MemberData(nameof(Formats))]
    public void ForwardAndBackwardMatchDequantizeThenMultiply(string map, int blockSize, bool nested, bool bf16)
    {
        if (bf16) Case<BFloat16>(Book(map), blockSize, nested);
        else Case<DeviceHalf>(Book(map), blockSize, nested);
    }

    private static void Case<T>(CodeBook map, int blockSize, bool nested) where T : unmanaged
    {
        var seed = Seeded.Create();
        var device = Device.Value;
        const int m = 19, k = 40, n = 24, r = 8;
        float alpha = 2f;
        using var x = LoraOperand<T>.Random(device, seed, 1f, m, k);
        using var wFull = LoraOperand<T>.Random(device, seed, 0.2f, n, k);
        using var a = LoraOperand<T>.Random(device, seed, 0.3f, r, k);
        using var b = LoraOperand<T>.Random(device, seed, 0.3f, n, r);
        using var dy = LoraOperand<T>.Random(device, seed, 1f, m, n);
        using var bias = LoraOperand<T>.Random(device, seed, 1f, n);
        var dropout = LoraTestData.Dropout(seed, 0.1f);
        using var q = BlockwiseQuantized.Quantize<T>(wFull.Device.ReadOnlySpan.Reshape(n * k), map, blockSize, nested);
        using var wdq = device.Allocate<T>(n, k);
        q.Dequantize<T>(wdq.Span.Reshape(n * k));
        var wHost = Compare.ToFloat<T>(wdq.ToArray());

        using var s = LoraTestData.Poisoned(device, m, r);
        using var y = LoraTestData.PoisonedOf<T>(device, m, n);
        Kernels.Lora.Lora.QuantizedForward<T>(x.Device, q, a.Device, b.Device, bias.Device.ReadOnlySpan, alpha, dropout, s, y);
        var got = Compare.ToFloat<T>(y.ToArray());
        Poison.AssertAllWritten<float>(got, "Y", seed);
        var expected = new double[m * n];
        LoraReference.Forward(x.Host, wHost, a.Host, b.Host, bias.Host, m, k, n, r, alpha, dropout, expected);
        string tag = $"{map.Name} B={blockSize} nested={nested} {ElementTypes.Name<T>()}";
        Compare.Close(got, expected, LoraTestData.Bound<T>(), $"QLoRA Y {tag}", seed);

        // The same tiles reach the tensor cores as with the dequantized copy: identical bits.
        using var s2 = device.Allocate<float>(m, r);
        using var y2 = device.Allocate<T>(m, n);
        Kernels.Lora.Lora.Forward<T>(x.Device, wdq, a.Device, b.Device, bias.Device.ReadOnlySpan, alpha, dropout, s2, y2);
        LoraTestData.AssertBitsUnchanged(y, y2.ToArray(), $"QLoRA Y equals dense-on-dequantized Y ({tag})");

        using var ds = LoraTestData.Poisoned(device, m, r);
        using var da = LoraTestData.Poisoned(device, r, k);
        using var db = LoraTestData.Poisoned(device, n, r);
        using var dx = LoraTestData.PoisonedOf<T>(device, m, k);
        Kernels.Lora.Lora.QuantizedBackward<T>(dy.Device, x.Device, q, a.Device, b.Device, s, alpha, dropout, ds, da, db, dx);
        var gotDx = Compare.ToFloat<T>(dx.ToArray());
        Poison.AssertAllWritten<float>(gotDx, "dX", seed);
        var eds = new double[m * r];
        var eda = new double[r * k];
        var edb = new double[n * r];
        var edx = new double[m * k];
        LoraReference.Backward(dy.Host, x.Host, wHost, a.Host, b.Host, m, k, n, r, alpha, dropout, eds, eda, edb, edx);
        Compare.Close(gotDx, edx, LoraTestData.Bound<T>(), $"QLoRA dX {tag}", seed);
        Compare.Close(da.ToArray(), eda, Compare.F32, $"QLoRA dA {tag}", seed);
    }

    [Fact]
    public void RejectsWeightOfWrongSize()
    {
        var seed = Seeded.Create();
        var device = Device.Value;
        using var x = LoraOperand<DeviceHalf>.Random(device, seed, 1f, 3, 8);
        using var a = LoraOperand<DeviceHalf>.Random(device, seed, 1f, 2, 8);
        using var b = LoraOperand<DeviceHalf>.Random(device, seed, 1f, 5, 2);
        using var w = LoraOperand<DeviceHalf>.Random(device, seed, 1f, 6 * 8);
        using var q = BlockwiseQuantized.Quantize<DeviceHalf>(w.Device, CodeBook.NF4, 64);
        using var s = LoraTestData.Poisoned(device, 3, 2);
        using var y = LoraTestData.PoisonedOf<DeviceHalf>(device, 3, 5);
        var before = y.ToArray();
        Assert.Throws<ArgumentException>(() => Kernels.Lora.Lora.QuantizedForward<DeviceHalf>(x.Device, q, a.Device, b.Device, null, 1f, default, s, y));
        LoraTestData.AssertBitsUnchanged(y, before, "Y");
    }
}
