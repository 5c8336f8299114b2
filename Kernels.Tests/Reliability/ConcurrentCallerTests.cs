using Kernels.Dense;
using Kernels.LowRank;
using Kernels.Optimizers;
using Kernels.Quantization;
using Kernels.Sparse;
using Kernels.SpQR;
using Kernels.Tensors;
using Kernels.Tests.Dense;
using Kernels.Tests.Harness;
using Kernels.Tests.LowRank;
using Kernels.Tests.Optimizers;
using Kernels.Tests.Lora;
using Kernels.Tests.SpQR;
using Kernels.Tests.Sparse;
using Xunit;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Tests.Reliability;

/// <summary>
/// Every family called from several host threads at once on one device — those with shared scratch memory (SpQR's
/// gather buffer, the engine's split-K partials, LoRA's split-M partials, the low-rank workspace) and those that share
/// only the device's code-book tables (quantization, 8-bit optimizers): each thread's result must match the reference
/// for its own inputs.
/// </summary>
public class ConcurrentCallerTests
{
    private const int Threads = 4;

    [Fact]
    public void SpqrGemmOnOneMatrixFromFourThreads()
    {
        var device = Devices.CpuWarp32;
        var seed = Seeded.Create();
        const int m = 48, n = 64, tokens = 5;
        // Integer data: every f32 sum is exact, so each thread's output must equal the f64 reference bit for bit.
        var (u, w) = SpqrTestData.Integer(m, n, seed, permute: true);
        var packed = SpqrPacking.Pack(u);
        Assert.True(packed.InPerm.Length > 0, "the case needs a permutation, so the gather buffer is used");
        using var matrix = new SpqrMatrix(device, packed);
        var inputs = Enumerable.Range(0, Threads).Select(_ => SpqrTestData.IntegerX(tokens * n, seed)).ToArray();
        Concurrently.Run(Threads, rounds: 2, (t, round) =>
        {
            using var x = DeviceTensor.FromHalf(device, inputs[t], tokens, n);
            using var y = device.Allocate<DeviceHalf>(tokens, m);
            Poison.Fill(y);
            // Round 0 gathers and stores directly; round 1 also goes through the split-K partials.
            Spqr.Gemm(matrix, x, y, splits: round == 0 ? 1 : 2, shape: 1);
            var got = new Half[tokens * m];
            y.CopyTo(got);
            for (int i = 0; i < tokens; i++)
                for (int r = 0; r < m; r++)
                {
                    double acc = 0;
                    for (int c = 0; c < n; c++) acc += w[r * n + c] * (double)inputs[t][i * n + c];
                    Assert.True(BitConverter.HalfToUInt16Bits((Half)acc) == BitConverter.HalfToUInt16Bits(got[i * m + r]),
                        $"thread {t} round {round}: y[{i},{r}] = {got[i * m + r]}, expected {(Half)acc} {seed.Tag}");
                }
        });
    }

    [Fact]
    public void SplitKDenseGemmFromFourThreads()
    {
        var device = Devices.CpuWarp32;
        var seed = Seeded.Create();
        const int m = 40, k = 200, n = 2;
        var cases = Enumerable.Range(0, Threads).Select(_ => GemmTests.Inputs<DeviceHalf>(seed, n, k, m)).ToArray();
        Concurrently.Run(Threads, rounds: 2, (t, round) =>
        {
            var (xh, wh, _) = cases[t];
            using var x = device.Upload<DeviceHalf>(xh, n, k);
            using var w = device.Upload<DeviceHalf>(wh, m, k);
            using var y = device.Allocate<DeviceHalf>(n, m);
            Poison.Fill(y);
            Kernels.Dense.Dense.Gemm<DeviceHalf>(x, w, null, y, new Kernels.Dense.Dense.GemmTuning(Splits: 4));
            var expected = DenseReference.GemmExact<DeviceHalf>(xh, wh, ReadOnlySpan<DeviceHalf>.Empty, n, k, m);
            Compare.Close(Compare.ToFloat<DeviceHalf>(y.ToArray()), expected, Compare.F16, $"thread {t} round {round} split-K GEMM", seed);
        });
    }

    [Fact]
    public void SplitKSpMMOnOneMatrixFromFourThreads()
    {
        var device = Devices.CpuWarp32;
        var seed = Seeded.Create();
        const int m = 130, k = 300, n = 5;
        var w = SparseTestData.Weights(seed, m, k, 0.8, ElementType.Float16);
        var host = TiledCslEncoder.Encode(SparseTestData.ToHalf(w), m, k);
        using var matrix = TiledCslMatrix.Upload(device, host);
        var inputs = Enumerable.Range(0, Threads).Select(_ => SparseTestData.Activations(seed, n, k, ElementType.Float16)).ToArray();
        Concurrently.Run(Threads, rounds: 1, (t, round) =>
        {
            using var x = device.Upload(SparseTestData.ToDeviceHalf(inputs[t]), n, k);
            using var y = device.Allocate<DeviceHalf>(n, m);
            Poison.Fill(y);
            SpMM.Multiply(x.ReadOnlySpan, matrix, y.Span, SpMMPath.Sparse, new SpMM.Tuning(Splits: 3));
            var expected = new double[n * m];
            SpMMReference.Multiply(inputs[t], host, expected);
            Compare.Close(Compare.ToFloat<DeviceHalf>(y.ToArray()), expected, Compare.F16, $"thread {t} split-K SpMM", seed);
        });
    }

    [Fact]
    public void LoraSplitMGradientsFromFourThreads()
    {
        var device = Devices.CpuSmall;
        var seed = Seeded.Create();
        const int m = 520, k = 9, n = 6, r = 4; // more than one 512-row chunk: dA and dB go through the shared partials
        const float alpha = 0.5f;
        var operands = Enumerable.Range(0, Threads).Select(_ => (
            X: LoraOperand<DeviceHalf>.Random(device, seed, 1f, m, k), B: LoraOperand<DeviceHalf>.Random(device, seed, 0.5f, n, r),
            A: LoraOperand<DeviceHalf>.Random(device, seed, 0.5f, r, k), Dy: LoraOperand<DeviceHalf>.Random(device, seed, 1f, m, n))).ToArray();
        var w = new float[n * k];
        try
        {
            Concurrently.Run(Threads, rounds: 2, (t, round) =>
            {
                var o = operands[t];
                using var s = LoraTestData.Poisoned(device, m, r);
                using var ds = LoraTestData.Poisoned(device, m, r);
                using var db = LoraTestData.Poisoned(device, n, r);
                using var da = LoraTestData.Poisoned(device, r, k);
                Kernels.Lora.Lora.Shrink<DeviceHalf>(o.X.Device, o.A.Device, default, s);
                Kernels.Lora.Lora.BackwardDsDb<DeviceHalf>(o.Dy.Device, o.B.Device, s, alpha, ds, db);
                Kernels.Lora.Lora.BackwardDa<DeviceHalf>(ds, o.X.Device, default, da);
                var eds = new double[m * r];
                var eda = new double[r * k];
                var edb = new double[n * r];
                var edx = new double[m * k];
                Kernels.Lora.LoraReference.Backward(o.Dy.Host, o.X.Host, w, o.A.Host, o.B.Host, m, k, n, r, alpha, default, eds, eda, edb, edx);
                Compare.Close(ds.ToArray(), eds, Compare.F32, $"thread {t} round {round} dS", seed);
                Compare.Close(db.ToArray(), edb, Compare.F32, $"thread {t} round {round} dB", seed);
                Compare.Close(da.ToArray(), eda, Compare.F32, $"thread {t} round {round} dA", seed);
            });
        }
        finally
        {
            foreach (var o in operands) { o.X.Dispose(); o.B.Dispose(); o.A.Dispose(); o.Dy.Dispose(); }
        }
    }

    [Fact]
    public void RandomizedSvdFromFourThreads()
    {
        var device = Devices.CpuSmall;
        var seed = Seeded.Create();
        const int m = 64, n = 48, r = 6;
        var planted = Enumerable.Range(0, 12).Select(i => 10.0 * Math.Pow(0.8, i)).ToArray();
        var gradients = Enumerable.Range(0, Threads)
            .Select(t => LowRankData.WithSpectrum(seed, m, n, planted.Select(s => s * (t + 1)).ToArray(), out _, out _)).ToArray();
        Concurrently.Run(Threads, rounds: 2, (t, round) =>
        {
            using var g = device.Upload<float>(gradients[t], m, n);
            using var basis = device.Allocate<float>(m, r);
            var values = new float[r];
            Subspace.RandomizedSvd(g, ProjectionSide.Left, 2, 8, (ulong)(t + 1), basis, values);
            for (int i = 0; i < r; i++)
                Assert.True(Math.Abs(values[i] - planted[i] * (t + 1)) <= 1e-4 * planted[0] * (t + 1),
                    $"thread {t} round {round}: σ{i} = {values[i]}, planted {planted[i] * (t + 1)} {seed.Tag}");
        });
    }

    [Fact]
    public void BlockwiseQuantizeAndDequantizeFromFourThreads()
    {
        // Each thread its own code book, block size and input; all share the device's uploaded code-book tables.
        var device = Devices.CpuWarp32;
        var seed = Seeded.Create();
        var books = new[] { CodeBook.DynamicSigned, CodeBook.NF4, CodeBook.FP4, CodeBook.LinearSigned };
        var blockSizes = new[] { 64, 128, 256, 64 };
        const int n = 3000 + 17;
        var inputs = Enumerable.Range(0, Threads).Select(_ => seed.Normal(n)).ToArray();
        Concurrently.Run(Threads, rounds: 2, (t, round) =>
        {
            var (map, blockSize) = (books[t], blockSizes[t]);
            var (refCodes, refAbsmax) = BlockwiseReference.Quantize<float>(inputs[t], map, blockSize);
            var expected = new float[n];
            BlockwiseReference.Dequantize<float>(refCodes, refAbsmax, map, blockSize, expected);
            using var x = device.Upload<float>(inputs[t]);
            using var codes = device.Allocate<byte>((nint)Blockwise.CodeBytes(n, map));
            using var absmax = device.Allocate<float>((nint)Blockwise.BlockCount(n, blockSize));
            using var y = device.Allocate<float>(n);
            Poison.Fill(codes, (byte)0xA5);
            Poison.Fill(absmax);
            Poison.Fill(y);
            Blockwise.Quantize<float>(x, map, blockSize, codes, absmax);
            Blockwise.Dequantize<float>(codes, absmax, map, blockSize, y);
            Compare.Exact<byte>(codes.ToArray(), refCodes, $"thread {t} round {round} {map} codes", seed);
            Compare.Exact<float>(absmax.ToArray(), refAbsmax, $"thread {t} round {round} absmax", seed);
            Compare.Exact<float>(y.ToArray(), expected, $"thread {t} round {round} dequantized", seed);
        });
    }

    [Fact]
    public void Optimizer8BitStepsFromFourThreads()
    {
        // Four parameters, each with its own quantized state and optimizer, stepped at once on one device.
        var device = Devices.CpuSmall;
        var seed = Seeded.Create();
        var kinds = new[] { OptimizerKind.AdamW, OptimizerKind.Lion, OptimizerKind.Momentum, OptimizerKind.RMSprop };
        const int n = 4096 + 300, steps = 2;
        var p0 = Enumerable.Range(0, Threads).Select(_ => seed.Normal(n, 0.1f)).ToArray();
        var grads = Enumerable.Range(0, Threads).Select(_ => Enumerable.Range(0, steps).Select(_ => seed.Normal(n, 0.01f)).ToArray()).ToArray();
        Concurrently.Run(Threads, rounds: 1, (t, round) =>
        {
            var settings = OptimizerProblem.Settings(kinds[t], 0.01f);
            using var p = device.Upload<float>(p0[t], n);
            using var g = device.Allocate<float>(n);
            using var state = Optimizer8BitState.Create(device, kinds[t], n);
            Assert.True(state.IsQuantized);
            var refState = state.Export();
            var refP = (float[])p0[t].Clone();
            for (int step = 1; step <= steps; step++)
            {
                g.CopyFrom(grads[t][step - 1]);
                Optimizer8Bit.Step<float, float>(g, state, settings, step, p);
                Optimizer8BitReference.Step<float, float>(grads[t][step - 1], refState, settings, step, refP);
            }
            Compare.Exact<float>(p.ToArray(), refP, $"thread {t} {kinds[t]} parameters", seed);
            KernelVsReferenceTests.AssertStatesEqual(state.Export(), refState, seed);
        });
    }
}
