using Kernels.Dense;
using Kernels.Quantization;
using Kernels.SpQR;
using Kernels.Tensors;
using Kernels.Tests.Harness;
using Kernels.Tests.Lora;
using Kernels.Tests.SpQR;
using Xunit;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Tests.Reliability;

/// <summary>Views and formats used after their memory was disposed: <see cref="ObjectDisposedException"/> at validation, nothing launched.</summary>
public class LifetimeTests
{
    [Fact]
    public void ViewsOfADisposedTensorAreRefusedEverywhere()
    {
        var device = Devices.CpuSmall;
        var t = device.Upload<float>(new float[256], 256);
        var view = t.Span;
        var readOnly = t.ReadOnlySpan;
        t.Dispose();
        Assert.True(view.IsDisposed);
        var guard = new WriteGuard();
        using var codes = guard.Watch(device.Allocate<byte>(256), "codes");
        using var absmax = guard.Watch(device.Allocate<float>(4), "absmax");
        guard.Rejects<ObjectDisposedException>(() => Blockwise.Quantize(view, CodeBook.DynamicSigned, 64, codes, absmax), what: "Quantize");
        guard.Rejects<ObjectDisposedException>(() => Blockwise.Dequantize(codes.ReadOnlySpan, absmax.ReadOnlySpan, CodeBook.DynamicSigned, 64, view),
            what: "Dequantize");
        Assert.Throws<ObjectDisposedException>(() => readOnly.ToArray());
        Assert.Throws<ObjectDisposedException>(() => view.CopyTo(new float[256]));
        Assert.Throws<ObjectDisposedException>(() => view.CopyFrom(new float[256]));
        Assert.Throws<ObjectDisposedException>(() => view.Clear());
        Assert.Throws<ObjectDisposedException>(() => readOnly.Slice(0..2));
        Assert.Throws<ObjectDisposedException>(() => t.Span);
    }

    [Fact]
    public void DenseGemvRefusesADisposedInput()
    {
        var device = Devices.CpuWarp32;
        using var w = device.Allocate<DeviceHalf>(8, 16);
        var x = device.Allocate<DeviceHalf>(16);
        var xv = x.ReadOnlySpan;
        x.Dispose();
        var guard = new WriteGuard();
        using var y = guard.Watch(device.Allocate<DeviceHalf>(8), "y");
        guard.Rejects<ObjectDisposedException>(() => Kernels.Dense.Dense.Gemv<DeviceHalf>(w, xv, y), what: "Gemv");
    }

    [Fact]
    public void DisposedFormatsAreRefusedBeforeAnyWrite()
    {
        var seed = Seeded.Create();
        var device = Devices.CpuWarp32;
        // SpQR: a disposed matrix.
        var (u, _) = SpqrTestData.Integer(20, 30, seed);
        var matrix = new SpqrMatrix(device, SpqrPacking.Pack(u));
        matrix.Dispose();
        var guard = new WriteGuard();
        using var x = device.Allocate<DeviceHalf>(30);
        using var y = guard.Watch(device.Allocate<DeviceHalf>(20), "y");
        using var dense = guard.Watch(device.Allocate<DeviceHalf>(20, 30), "output");
        guard.Rejects<ObjectDisposedException>(() => Spqr.Gemv(matrix, x, y), what: "Spqr.Gemv");
        guard.Rejects<ObjectDisposedException>(() => Spqr.Decode(matrix, dense), what: "Spqr.Decode");

        // QLoRA forward with a disposed quantized base: S is the first thing the forward writes.
        using var xs = LoraOperand<DeviceHalf>.Random(device, seed, 1f, 3, 64);
        using var a = LoraOperand<DeviceHalf>.Random(device, seed, 1f, 2, 64);
        using var b = LoraOperand<DeviceHalf>.Random(device, seed, 1f, 5, 2);
        using var wq = LoraOperand<DeviceHalf>.Random(device, seed, 1f, 5 * 64);
        var q = BlockwiseQuantized.Quantize<DeviceHalf>(wq.Device, CodeBook.NF4, 64);
        q.Dispose();
        using var s = guard.Watch(device.Allocate<float>(3, 2), "S");
        using var yq = guard.Watch(device.Allocate<DeviceHalf>(3, 5), "Y");
        guard.Rejects<ObjectDisposedException>(
            () => Kernels.Lora.Lora.QuantizedForward<DeviceHalf>(xs.Device, q, a.Device, b.Device, null, 1f, default, s, yq), what: "QuantizedForward");
        using var out16 = guard.Watch(device.Allocate<DeviceHalf>(5 * 64), "dequantized");
        guard.Rejects<ObjectDisposedException>(() => q.Dequantize(out16), what: "BlockwiseQuantized.Dequantize");
    }
}
