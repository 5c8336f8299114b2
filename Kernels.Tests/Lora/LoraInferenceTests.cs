using Kernels.Lora;
using Kernels.Quantization;
using Kernels.Tensors;
using Kernels.Tests.Harness;
using Xunit;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Tests.Lora;

/// <summary>
/// Inference forwards without a caller-allocated S (null): the library leases S itself. Y must match the f64
/// reference and be bit-identical to the forward that writes S (the same kernels, the same S values).
/// </summary>
public class LoraInferenceTests
{
    private static readonly ComputeDeviceRef Device = new();

    [Theory]
    [InlineData(false, 7, 8, 37, 21)]
    [InlineData(true, 129, 16, 40, 24)]
    public void ForwardWithoutS(bool bf16, int m, int r, int k, int n)
    {
        if (bf16) ForwardCase<BFloat16>(m, r, k, n);
        else ForwardCase<DeviceHalf>(m, r, k, n);
    }

    private static void ForwardCase<T>(int m, int r, int k, int n) where T : unmanaged
    {
        var seed = Seeded.Create();
        var device = Device.Value;
        float alpha = 16f / r;
        using var x = LoraOperand<T>.Random(device, seed, 1f, m, k);
        using var w = LoraOperand<T>.Random(device, seed, 0.2f, n, k);
        using var a = LoraOperand<T>.Random(device, seed, 0.3f, r, k);
        using var b = LoraOperand<T>.Random(device, seed, 0.3f, n, r);
        using var bias = LoraOperand<T>.Random(device, seed, 1f, n);
        using var y = LoraTestData.PoisonedOf<T>(device, m, n);
        Kernels.Lora.Lora.Forward<T>(x.Device, w.Device, a.Device, b.Device, bias.Device.ReadOnlySpan, alpha, default, null, y);
        var got = Compare.ToFloat<T>(y.ToArray());
        Poison.AssertAllWritten<float>(got, "Y", seed);
        var expected = new double[m * n];
        LoraReference.Forward(x.Host, w.Host, a.Host, b.Host, bias.Host, m, k, n, r, alpha, default, expected);
        Compare.Close(got, expected, LoraTestData.Bound<T>(), $"Y without S {ElementTypes.Name<T>()}", seed);

        using var s = LoraTestData.Poisoned(device, m, r);
        using var y2 = LoraTestData.PoisonedOf<T>(device, m, n);
        Kernels.Lora.Lora.Forward<T>(x.Device, w.Device, a.Device, b.Device, bias.Device.ReadOnlySpan, alpha, default, s, y2);
        Compare.Exact<float>(got, Compare.ToFloat<T>(y2.ToArray()), "Y without S vs with S", seed);
    }

    [Fact]
    public void QuantizedForwardWithoutS()
    {
        var seed = Seeded.Create();
        var device = Device.Value;
        const int m = 19, k = 40, n = 24, r = 8;
        using var x = LoraOperand<DeviceHalf>.Random(device, seed, 1f, m, k);
        using var wFull = LoraOperand<DeviceHalf>.Random(device, seed, 0.2f, n, k);
        using var a = LoraOperand<DeviceHalf>.Random(device, seed, 0.3f, r, k);
        using var b = LoraOperand<DeviceHalf>.Random(device, seed, 0.3f, n, r);
        using var q = BlockwiseQuantized.Quantize<DeviceHalf>(wFull.Device.ReadOnlySpan.Reshape(n * k), CodeBook.NF4, 64, false);
        using var wdq = device.Allocate<DeviceHalf>(n, k);
        q.Dequantize<DeviceHalf>(wdq.Span.Reshape(n * k));
        var wHost = Compare.ToFloat<DeviceHalf>(wdq.ToArray());
        using var y = LoraTestData.PoisonedOf<DeviceHalf>(device, m, n);
        Kernels.Lora.Lora.QuantizedForward<DeviceHalf>(x.Device, q, a.Device, b.Device, null, 2f, default, null, y);
        var got = Compare.ToFloat<DeviceHalf>(y.ToArray());
        Poison.AssertAllWritten<float>(got, "Y", seed);
        var expected = new double[m * n];
        LoraReference.Forward(x.Host, wHost, a.Host, b.Host, [], m, k, n, r, 2f, default, expected);
        Compare.Close(got, expected, Compare.F16, "QLoRA Y without S", seed);
    }

    [Fact]
    public void SegmentedForwardWithoutS()
    {
        var seed = Seeded.Create();
        var device = Device.Value;
        const int k = 40, n = 24;
        int[] starts = [0, 3, 9, 17], ids = [1, -1, 0];
        int m = starts[^1];
        var (typed, host) = LoraTestData.Adapters<DeviceHalf>(seed, k, n, 8, 16, 1);
        using var set = LoraAdapterSet<DeviceHalf>.Create(device, k, n, typed);
        using var batch = LoraBatch.FromSegments(device, starts, ids);
        using var x = LoraOperand<DeviceHalf>.Random(device, seed, 1f, m, k);
        using var w = LoraOperand<DeviceHalf>.Random(device, seed, 0.2f, n, k);
        using var y = LoraTestData.PoisonedOf<DeviceHalf>(device, m, n);
        Kernels.Lora.Lora.SegmentedForward<DeviceHalf>(x.Device, w.Device, null, set, batch, default, null, y);
        var got = Compare.ToFloat<DeviceHalf>(y.ToArray());
        Poison.AssertAllWritten<float>(got, "Y", seed);
        var expected = new double[m * n];
        LoraReference.SegmentedForward(x.Host, w.Host, [], host, batch.RowAdapters, m, k, n, default, expected);
        Compare.Close(got, expected, Compare.F16, "segmented Y without S", seed);
    }
}
