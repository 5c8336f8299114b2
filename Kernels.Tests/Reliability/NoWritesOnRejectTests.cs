using Kernels.LowRank;
using Kernels.Lora;
using Kernels.Optimizers;
using Kernels.Quantization;
using Kernels.Sparse;
using Kernels.SpQR;
using Kernels.Tensors;
using Kernels.Tests.Harness;
using Kernels.Tests.Lora;
using Kernels.Tests.SpQR;
using Xunit;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Tests.Reliability;

/// <summary>
/// Every public operation of every family, given one bad argument that is checked late (an overlap, a disposed format,
/// a bad trailing shape), must throw and leave every destination exactly as poisoned (<see cref="WriteGuard"/>).
/// </summary>
public class NoWritesOnRejectTests
{
    private static DeviceTensorSpan<T> Rows<T>(DeviceTensor<T> flat, int start, int rows, int cols) where T : unmanaged =>
        flat.Span.Slice(start..(start + rows * cols)).Reshape(rows, cols);

    [Fact]
    public void Dense()
    {
        var device = Devices.CpuWarp32;
        var g = new WriteGuard();
        using var x = device.Allocate<DeviceHalf>(2, 16);
        using var w = device.Allocate<DeviceHalf>(8, 16);
        using var badBias = device.Allocate<DeviceHalf>(7);
        using var y = g.Watch(device.Allocate<DeviceHalf>(2, 8), "y");
        using var yv = g.Watch(device.Allocate<DeviceHalf>(8), "y (gemv)");
        using var xv = device.Allocate<DeviceHalf>(16);
        g.Rejects<ArgumentException>(() => Kernels.Dense.Dense.Gemm<DeviceHalf>(x, w, badBias.ReadOnlySpan, y), "bias", "Gemm");
        g.Rejects<ArgumentException>(() => Kernels.Dense.Dense.Gemv<DeviceHalf>(w, xv, badBias.ReadOnlySpan, yv), "bias", "Gemv");
    }

    [Fact]
    public void Sparse()
    {
        var device = Devices.CpuWarp32;
        var g = new WriteGuard();
        var weights = TiledCslMatrix.Encode(device, new System.Half[128 * 64], 128, 64);
        weights.Dispose();
        using var x = device.Allocate<DeviceHalf>(2, 64);
        using var y = g.Watch(device.Allocate<DeviceHalf>(2, 128), "y");
        using var dense = g.Watch(device.Allocate<DeviceHalf>(128, 64), "dense");
        g.Rejects<ObjectDisposedException>(() => SpMM.Multiply(x.ReadOnlySpan, weights, y.Span), what: "SpMM");
        g.Rejects<ObjectDisposedException>(() => TiledCslDeviceDecoder.Decode(weights, dense.Span), what: "Decode");
        using var live = TiledCslMatrix.Encode(device, new System.Half[128 * 64], 128, 64);
        var gone = device.Allocate<DeviceHalf>(128, 64);
        var goneView = gone.Span;
        gone.Dispose();
        Assert.Throws<ObjectDisposedException>(() => TiledCslDeviceDecoder.Decode(live, goneView));
    }

    [Fact]
    public void Spqr()
    {
        var device = Devices.CpuWarp32;
        var g = new WriteGuard();
        var (u, _) = SpqrTestData.Integer(20, 30, Seeded.Create());
        using var matrix = new SpqrMatrix(device, SpqrPacking.Pack(u));
        using var flat = g.Watch(device.Allocate<DeviceHalf>(5 * 30), "x and y");
        // y overlaps the last row of x: refused after every shape check passed.
        g.Rejects<ArgumentException>(() => Kernels.SpQR.Spqr.Gemm(matrix, Rows(flat, 0, 2, 30), Rows(flat, 50, 2, 20)), "y", "Gemm");
        using var output = g.Watch(device.Allocate<DeviceHalf>(20, 31), "output");
        g.Rejects<ArgumentException>(() => Kernels.SpQR.Spqr.Decode(matrix, output), "output", "Decode");
    }

    [Fact]
    public void Quantization()
    {
        var device = Devices.CpuSmall;
        var g = new WriteGuard();
        using var input = device.Allocate<float>(256);
        using var codes = g.Watch(device.Allocate<byte>(256), "codes");
        using var absmax = g.Watch(device.Allocate<float>(4), "absmax");
        using var counter = g.Watch(device.Allocate<long>(2), "counter");
        g.Rejects<ArgumentException>(() => Blockwise.Quantize(input, CodeBook.DynamicSigned, 64, codes, absmax,
            new BlockwiseOptions { NonFiniteCount = counter.Span }), "options.NonFiniteCount", "Quantize with a bad counter");
        using var one = g.Watch(device.Allocate<long>(1), "counter (1)");
        g.Rejects<ArgumentException>(() => Blockwise.Quantize(input, CodeBook.DynamicSigned, 64, codes, input.Span.Slice(0..4),
            new BlockwiseOptions { NonFiniteCount = one.Span }), "absmax", "Quantize with absmax over input");
        using var output = g.Watch(device.Allocate<float>(256), "output");
        using var shortAbsmax = device.Allocate<float>(3);
        g.Rejects<ArgumentException>(() => Blockwise.Dequantize(codes, shortAbsmax, CodeBook.DynamicSigned, 64, output), "absmax", "Dequantize");
        using var q = BlockwiseQuantized.Quantize(input, CodeBook.NF4, 64, nested: true);
        using var wrong = g.Watch(device.Allocate<float>(255), "output (255)");
        g.Rejects<ArgumentException>(() => q.Dequantize(wrong), "output", "BlockwiseQuantized.Dequantize");
    }

    [Fact]
    public void Optimizers()
    {
        var device = Devices.CpuSmall;
        var g = new WriteGuard();
        const int n = 300;
        using var state = Optimizer8BitState.Create(device, OptimizerKind.AdamW, n);
        using var grads = device.Upload<float>(new float[n], n);
        using var p = g.Watch(device.Allocate<float>(n), "parameters");
        using var counter = g.Watch(device.Allocate<int>(1), "counter");
        var settings = OptimizerSettings.Defaults(OptimizerKind.AdamW, 1e-3f);
        using var counter2 = g.Watch(device.Allocate<int>(2), "counter (2)");
        g.Rejects<ArgumentException>(() => Optimizer8Bit.Step<float, float>(grads, state, settings, 1, p,
            new OptimizerStepOptions { SkippedCount = counter2.Span }), "SkippedCount", "Step, counter of two elements");
        g.Rejects<ArgumentException>(() => Optimizer8Bit.Step<float, float>(p, state, settings, 1, p,
            new OptimizerStepOptions { SkippedCount = counter.Span }), "parameters", "Step, gradients = parameters");
    }

    [Fact]
    public void Lora()
    {
        var device = Devices.CpuWarp32;
        var g = new WriteGuard();
        const int m = 3, k = 8, n = 5, r = 2;
        using var x = device.Allocate<DeviceHalf>(m, k);
        using var w = device.Allocate<DeviceHalf>(n, k);
        using var a = device.Allocate<DeviceHalf>(r, k);
        using var b = device.Allocate<DeviceHalf>(n, r);
        using var dy = device.Allocate<DeviceHalf>(m, n);
        using var s = device.Allocate<float>(m, r);
        using var sOut = g.Watch(device.Allocate<float>(m, r), "S");
        using var wideS = g.Watch(device.Allocate<float>(m, r + 1), "S (wrong)");
        g.Rejects<ArgumentException>(() => Kernels.Lora.Lora.Shrink<DeviceHalf>(x, a, default, wideS), "s", "Shrink");

        using var grads = g.Watch(device.Allocate<float>(64), "dS/dB/dA");
        g.Rejects<ArgumentException>(() => Kernels.Lora.Lora.BackwardDsDb<DeviceHalf>(dy, b, s, 1f, Rows(grads, 0, m, r), Rows(grads, 4, n, r)),
            "db", "BackwardDsDb, dB over dS");
        g.Rejects<ArgumentException>(() => Kernels.Lora.Lora.BackwardDa<DeviceHalf>(Rows(grads, 0, m, r).AsReadOnly(), x, default, Rows(grads, 4, r, k)),
            "da", "BackwardDa, dA over dS");

        using var halves = g.Watch(device.Allocate<DeviceHalf>(64), "x and y");
        var xs = Rows(halves, 0, m, k).AsReadOnly();
        var ys = Rows(halves, 20, m, n);
        g.Rejects<ArgumentException>(() => Kernels.Lora.Lora.Forward<DeviceHalf>(xs, w, a, b, null, 1f, default, sOut, ys), "y", "Forward, y over x");
        g.Rejects<ArgumentException>(() => Kernels.Lora.Lora.BackwardDx<DeviceHalf>(Rows(halves, 0, m, n).AsReadOnly(), w, s, a, default,
            Rows(halves, 10, m, k)), "dx", "BackwardDx, dX over dY");

        var (typed, _) = LoraTestData.Adapters<DeviceHalf>(Seeded.Create(), k, n, 2, 1);
        using var adapters = LoraAdapterSet<DeviceHalf>.Create(device, k, n, typed);
        using var batch = LoraBatch.FromTokens(device, [0, 1, -1]);
        using var shortBatch = LoraBatch.FromTokens(device, [0, 1]);
        using var y = g.Watch(device.Allocate<DeviceHalf>(m, n), "Y");
        using var sMax = g.Watch(device.Allocate<float>(m, adapters.MaxRank), "S (segmented)");
        g.Rejects<ArgumentException>(() => Kernels.Lora.Lora.Bgmv<DeviceHalf>(xs, adapters, batch, ys), "y", "Bgmv, y over x");
        g.Rejects<ArgumentException>(() => Kernels.Lora.Lora.Bgmv<DeviceHalf>(x, adapters, shortBatch, y), "batch", "Bgmv, short batch");
        g.Rejects<ArgumentException>(() => Kernels.Lora.Lora.SegmentedForward<DeviceHalf>(x, w, null, adapters, batch, default, sMax,
            Rows(halves, 0, m, n + 1)), "y", "SegmentedForward, wrong y");

        using var ds = g.Watch(device.Allocate<float>(m, r), "dS");
        using var da = g.Watch(device.Allocate<float>(r, k), "dA");
        using var db = g.Watch(device.Allocate<float>(n, r), "dB");
        g.Rejects<ArgumentException>(() => Kernels.Lora.Lora.Backward<DeviceHalf>(Rows(halves, 0, m, n).AsReadOnly(), x, w, a, b, s, 1f, default,
            ds, da, db, Rows(halves, 10, m, k)), "dx", "Backward, dX over dY");

        using var wq = device.Upload<DeviceHalf>(new DeviceHalf[n * k], n * k);
        using var q = BlockwiseQuantized.Quantize(wq, CodeBook.NF4, 64);
        using var dx = g.Watch(device.Allocate<DeviceHalf>(m, k), "dX");
        g.Rejects<ArgumentException>(() => Kernels.Lora.Lora.QuantizedBackward<DeviceHalf>(dy, x, q, a, b, s, 1f, default,
            ds, Rows(grads, 0, r, k), Rows(grads, 8, n, r), dx), "da", "QuantizedBackward, dA over dB");
        g.Rejects<ArgumentException>(() => Kernels.Lora.Lora.QuantizedForward<DeviceHalf>(xs, q, a, b, null, 1f, default, sOut, ys), "y",
            "QuantizedForward, y over x");
    }

    [Fact]
    public void LowRank()
    {
        var device = Devices.CpuWarp32;
        var g = new WriteGuard();
        const int m = 6, k = 8, n = 5, r = 2;
        using var halves = g.Watch(device.Allocate<DeviceHalf>(96), "x and y");
        using var v = device.Allocate<DeviceHalf>(k, r);
        using var sc = device.Allocate<float>(r);
        using var uf = device.Allocate<DeviceHalf>(n, r);
        g.Rejects<ArgumentException>(() => LowRankProduct.StreamMatmul<DeviceHalf>(Rows(halves, 0, m, k), v, sc, uf, default, Rows(halves, 40, m, n)),
            "y", "StreamMatmul, y over x");
        using var b1 = device.Allocate<DeviceHalf>(r);
        using var v2 = device.Allocate<DeviceHalf>(r, n);
        g.Rejects<ArgumentException>(() => LowRankProduct.StreamFfn<DeviceHalf>(Rows(halves, 0, m, k), v, b1, Rows(halves, 60, r, r), v2, default,
            FfnActivation.Gelu, Rows(halves, 50, m, n)), "y", "StreamFfn, y over u2");

        var small = Devices.CpuSmall;
        using var gradient = small.Allocate<float>(m, n);
        using var p = small.Allocate<float>(m, r);
        using var floats = g.Watch(small.Allocate<float>(64), "R and update");
        using var result = g.Watch(small.Allocate<float>(r, n + 1), "R");
        g.Rejects<ArgumentException>(() => GaLore.Project(gradient, p, ProjectionSide.Left, result), "result", "Project");
        using var nUpdate = small.Allocate<float>(r, n);
        using var update = g.Watch(small.Allocate<float>(m, n + 1), "ΔW");
        g.Rejects<ArgumentException>(() => GaLore.BackProject(nUpdate, p, ProjectionSide.Left, 1f, update), "update", "BackProject");
        using var weight = g.Watch(small.Allocate<float>(m, n), "W");
        g.Rejects<ArgumentException>(() => GaLore.ApplyUpdate(nUpdate, p, ProjectionSide.Left, float.NaN, 1f, weight), "learningRate", "ApplyUpdate");
        using var basis = g.Watch(small.Allocate<float>(m, r), "basis");
        g.Rejects<ArgumentOutOfRangeException>(() => Subspace.WarmIterate(gradient, ProjectionSide.Left, 0, basis), "iterations", "WarmIterate");
        var values = new float[r - 1];
        g.Rejects<ArgumentException>(() => Subspace.RandomizedSvd(gradient, ProjectionSide.Left, 1, 2, 1, basis, values), "singularValues",
            "RandomizedSvd");
    }
}
