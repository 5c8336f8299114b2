using Kernels.Quantization;
using Kernels.Runtime;
using Kernels.Tensors;
using Kernels.Tests.Harness;
using Xunit;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Tests.Quantization;

public class BlockwiseTests
{
    private static ComputeDevice Device => Devices.CpuSmall;

    private static CodeBook Book(string name) => CodeBook.All.Single(b => b.Name == name);

    // Blocks of different scales so absmax varies, plus exact zeros.
    private static float[] Data(Seeded seed, int n, bool unsigned)
    {
        var x = new float[n];
        for (int i = 0; i < n; i++)
        {
            float scale = MathF.Pow(10f, (i / 97) % 5 - 2);
            x[i] = unsigned ? scale * (float)seed.Random.NextDouble() : scale * seed.NextNormal();
            if (i % 53 == 0) x[i] = 0f;
        }
        return x;
    }

    public static TheoryData<string, int, string, int> KernelCases() => new()
    {
        { "dynamic-signed", 32, "f32", 3 * 32 + 17 },
        { "dynamic-signed", 64, "f16", 1001 },
        { "dynamic-signed", 128, "bf16", 999 },
        { "dynamic-signed", 256, "f32", 4099 },
        { "dynamic-signed", 512, "f16", 1537 },
        { "dynamic-signed", 1024, "f32", 3001 },
        { "dynamic-signed", 2048, "bf16", 4097 },
        { "dynamic-signed", 4096, "f32", 9001 },
        { "dynamic-signed", 4096, "f16", 100 },      // shorter than one block
        { "dynamic-signed", 256, "f32", 1 },
        { "dynamic-unsigned", 256, "f16", 1000 },
        { "linear-signed", 128, "bf16", 777 },
        { "linear-unsigned", 64, "f32", 640 },
        { "nf4", 64, "f32", 1001 },
        { "nf4", 32, "f16", 33 },
        { "nf4", 4096, "bf16", 5001 },
        { "nf4", 256, "f32", 1 },
        { "nf4", 512, "f32", 3 },
        { "fp4", 128, "f32", 999 },
        { "fp4", 64, "bf16", 4096 },
        { "fp4", 2048, "f16", 2047 },
    };

    [Theory]
    [MemberData(nameof(KernelCases))]
    public void KernelCodesEqualReference(string bookName, int blockSize, string type, int n)
    {
        switch (type)
        {
            case "f32": RunEqualReference<float>(Book(bookName), blockSize, n); break;
            case "f16": RunEqualReference<DeviceHalf>(Book(bookName), blockSize, n); break;
            default: RunEqualReference<BFloat16>(Book(bookName), blockSize, n); break;
        }
    }

    private static void RunEqualReference<T>(CodeBook map, int blockSize, int n) where T : unmanaged, IEquatable<T>
    {
        var seed = Seeded.Create();
        var host = ElementTypes.FromFloat<T>(Data(seed, n, map.Values[0] >= 0));
        var (refCodes, refAbsmax) = BlockwiseReference.Quantize<T>(host, map, blockSize);
        using var x = Device.Upload<T>(host);
        using var codes = Device.Allocate<byte>((nint)Blockwise.CodeBytes(n, map));
        using var absmax = Device.Allocate<float>((nint)Blockwise.BlockCount(n, blockSize));
        foreach (byte poison in new byte[] { 0x00, 0xFF }) // two poisons: an unwritten byte cannot match both
        {
            Poison.Fill(codes, poison);
            Poison.Fill(absmax);
            Blockwise.Quantize<T>(x, map, blockSize, codes, absmax);
            Device.Synchronize();
            Compare.Exact<byte>(codes.ToArray(), refCodes, $"{map} B={blockSize} {typeof(T).Name} n={n} codes", seed);
            Compare.Exact<float>(absmax.ToArray(), refAbsmax, "absmax", seed);
        }

        var expected = new T[n];
        BlockwiseReference.Dequantize<T>(refCodes, refAbsmax, map, blockSize, expected);
        using var y = Device.Allocate<T>(n);
        Poison.Fill(y);
        Blockwise.Dequantize<T>(codes, absmax, map, blockSize, y);
        var got = y.ToArray();
        Poison.AssertAllWritten<T>(got, "dequantized", seed);
        Compare.Exact<T>(got, expected, "dequantized", seed); // one fp32 multiply then one rounding: exact on every device
    }

    [Fact]
    public void UnalignedViewsTakeTheScalarPathAndAgree()
    {
        var seed = Seeded.Create();
        var map = CodeBook.DynamicSigned;
        int n = 1000, blockSize = 64;
        var all = seed.Normal(n + 3);
        using var xAll = Device.Upload<float>(all);
        var x = xAll.Span.Slice(3..); // 12-byte offset: not 16-byte aligned
        using var codesAll = Device.Allocate<byte>(n + 5);
        var codes = codesAll.Span.Slice(5..);
        using var absmax = Device.Allocate<float>((nint)Blockwise.BlockCount(n, blockSize));
        Blockwise.Quantize<float>(x, map, blockSize, codes, absmax);
        var (refCodes, refAbsmax) = BlockwiseReference.Quantize<float>(all.AsSpan(3), map, blockSize);
        Compare.Exact<byte>(codes.AsReadOnly().ToArray(), refCodes, "unaligned codes", seed);
        Compare.Exact<float>(absmax.ToArray(), refAbsmax, "unaligned absmax", seed);
        using var outAll = Device.Allocate<float>(n + 1);
        var output = outAll.Span.Slice(1..);
        Blockwise.Dequantize<float>(codes, absmax, map, blockSize, output);
        Compare.Exact<float>(output.AsReadOnly().ToArray(), BlockwiseReference.Dequantize(refCodes, refAbsmax, map, blockSize, n), "unaligned dequantize", seed);
    }

    // bitsandbytes' bounds were measured on 2^20-element tensors. At 2^16 elements the sample mean has a standard error,
    // dominated by the block-to-block spread of absmax, so it is estimated from per-block mean errors and the check
    // allows the bound plus four standard errors.
    private static void AssertMeanAbs(float[] x, CodeBook map, int blockSize, bool onDevice, double bound, string what, Seeded seed)
    {
        var err = AbsErrors(x, map, blockSize, onDevice);
        double mean = err.Average();
        var blockMeans = err.Chunk(blockSize).Select(c => c.Average()).ToArray();
        double sd = Math.Sqrt(blockMeans.Select(e => (e - mean) * (e - mean)).Sum() / Math.Max(1, blockMeans.Length - 1));
        double allowed = bound + 4 * sd / Math.Sqrt(blockMeans.Length);
        Assert.True(mean <= allowed, $"{what}: mean abs error {mean:F5} > {bound} + 4 s.e. = {allowed:F5} {seed.Tag}");
    }

    private static double[] AbsErrors(float[] x, CodeBook map, int blockSize, bool onDevice)
    {
        float[] back;
        if (onDevice)
        {
            using var dx = Device.Upload<float>(x);
            using var codes = Device.Allocate<byte>((nint)Blockwise.CodeBytes(x.Length, map));
            using var absmax = Device.Allocate<float>((nint)Blockwise.BlockCount(x.Length, blockSize));
            using var y = Device.Allocate<float>(x.Length);
            Blockwise.Quantize<float>(dx, map, blockSize, codes, absmax);
            Blockwise.Dequantize<float>(codes, absmax, map, blockSize, y);
            back = y.ToArray();
        }
        else
        {
            var (c, a) = BlockwiseReference.Quantize<float>(x, map, blockSize);
            back = BlockwiseReference.Dequantize(c, a, map, blockSize, x.Length);
        }
        var err = new double[x.Length];
        for (int i = 0; i < x.Length; i++) err[i] = Math.Abs(x[i] - back[i]);
        return err;
    }

    [Fact]
    public void RoundTripErrorsAreWithinBitsandbytesBounds()
    {
        var seed = Seeded.Create();
        const int n = 1 << 16;
        var randn = seed.Normal(n);
        var rand = seed.Uniform(n);
        // docs/bitsandbytes.md §4 (test_functional.py thresholds and the 4-bit mean+7σ values).
        AssertMeanAbs(randn, CodeBook.DynamicSigned, 4096, true, 0.011, "8-bit dynamic randn B=4096", seed);
        AssertMeanAbs(randn, CodeBook.DynamicSigned, 256, false, 0.011, "8-bit dynamic randn B=256", seed);
        AssertMeanAbs(rand, CodeBook.DynamicSigned, 256, false, 0.0036, "8-bit dynamic rand, signed map", seed);
        AssertMeanAbs(rand, CodeBook.DynamicUnsigned, 256, false, 0.0023, "8-bit dynamic rand, unsigned map", seed);
        AssertMeanAbs(randn, CodeBook.NF4, 256, true, 0.0803, "NF4 randn B=256", seed);
        AssertMeanAbs(randn, CodeBook.NF4, 64, false, 0.0728, "NF4 randn B=64", seed);
        AssertMeanAbs(randn, CodeBook.FP4, 64, false, 0.11, "FP4 randn B=64 (mistral.rs bound)", seed);
    }

    [Fact]
    public void ZeroNanInfSubnormalAndSingleElementBlocks()
    {
        var map = CodeBook.DynamicSigned;
        const int b = 32;
        var x = new float[6 * b + 1];
        // block 0: all zero. block 1: all NaN. block 2: one NaN, one +Inf, one −Inf among finite values.
        for (int i = b; i < 2 * b; i++) x[i] = float.NaN;
        for (int i = 2 * b; i < 3 * b; i++) x[i] = (i - 2 * b - 16) * 0.09375f; // exact: −1.5 … 1.40625
        x[2 * b + 3] = float.NaN; x[2 * b + 4] = float.PositiveInfinity; x[2 * b + 5] = float.NegativeInfinity;
        // block 3: subnormals. block 4: all +Inf. block 5: −0 and tiny normals. block 6: a single element.
        for (int i = 3 * b; i < 4 * b; i++) x[i] = (i % 2 == 0 ? 1 : -1) * 1e-40f * (i - 3 * b + 1) / b;
        for (int i = 4 * b; i < 5 * b; i++) x[i] = float.PositiveInfinity;
        for (int i = 5 * b; i < 6 * b; i++) x[i] = i % 3 == 0 ? -0f : 1e-30f;
        x[6 * b] = -2.5f;

        using var dx = Device.Upload<float>(x);
        using var codes = Device.Allocate<byte>(x.Length);
        using var absmax = Device.Allocate<float>(7);
        using var counter = Device.Allocate<long>(1);
        using var y = Device.Allocate<float>(x.Length);
        Blockwise.Quantize<float>(dx, map, b, codes, absmax, new BlockwiseOptions { NonFiniteCount = counter });
        Blockwise.Dequantize<float>(codes, absmax, map, b, y);
        var c = codes.ToArray();
        var a = absmax.ToArray();
        var back = y.ToArray();

        Assert.Equal(b + 3 + b, counter.ToArray()[0]);
        Assert.Equal(0f, a[0]);
        for (int i = 0; i < b; i++) { Assert.Equal(map.ZeroCode, c[i]); Assert.Equal(0f, back[i]); }
        Assert.Equal(0f, a[1]); // all-NaN: no finite element, absmax 0 (bitsandbytes: −FLT_MAX → 3.4e38)
        for (int i = b; i < 2 * b; i++) { Assert.Equal(map.ZeroCode, c[i]); Assert.Equal(0f, back[i]); }
        Assert.Equal(1.5f, a[2]); // finite maximum only: ±∞ does not poison the block
        Assert.Equal(map.ZeroCode, c[2 * b + 3]);
        Assert.Equal(map.PlusOneCode, c[2 * b + 4]);
        Assert.Equal(map.MinusOneCode, c[2 * b + 5]);
        Assert.Equal(1.5f, back[2 * b + 4]);
        Assert.Equal(map.Values[0] * 1.5f, back[2 * b]); // −1.5 is −1 after scaling: code 0 (the signed map has no −1)
        for (int i = 2 * b; i < 3 * b; i++) Assert.True(float.IsFinite(back[i]));
        Assert.Equal(1e-40f, a[3]); // subnormal absmax is exact
        Assert.Equal(0f, a[4]); // all +∞: no finite element
        for (int i = 4 * b; i < 5 * b; i++) Assert.Equal(map.PlusOneCode, c[i]);
        Assert.Equal(1e-30f, a[5]);
        Assert.Equal(2.5f, a[6]);
        Assert.Equal(map.Values[0] * 2.5f, back[6 * b]);

        // Codes equal the reference, including its non-finite count.
        var refCodes = new byte[x.Length];
        var refAbsmax = new float[7];
        long bad = BlockwiseReference.Quantize<float>(x, map, b, refCodes, refAbsmax);
        Assert.Equal(counter.ToArray()[0], bad);
        Compare.Exact<byte>(c, refCodes, "edge codes");
        Compare.Exact<float>(a, refAbsmax, "edge absmax");
    }

    [Fact]
    public void SubnormalBlockRoundTripsItsExtremesExactly()
    {
        var map = CodeBook.DynamicSigned;
        var x = new float[64];
        for (int i = 0; i < x.Length; i++) x[i] = 1e-41f * (i - 20);
        var (codes, absmax) = BlockwiseReference.Quantize<float>(x, map, 64);
        Assert.Equal(x[^1], absmax[0]);
        Assert.Equal(255, codes[^1]); // the maximum maps to +1 exactly despite the missing reciprocal
        Assert.Equal(127, codes[20]);
        using var dx = Device.Upload<float>(x);
        using var dc = Device.Allocate<byte>(64);
        using var da = Device.Allocate<float>(1);
        Blockwise.Quantize<float>(dx, map, 64, dc, da);
        Compare.Exact<byte>(dc.ToArray(), codes, "subnormal codes");
    }

    [Fact]
    public void FourBitPacksFirstElementInHighNibbleAndPadsWithZeroCode()
    {
        var map = CodeBook.NF4;
        float[] x = [1f, -1f, 0f]; // codes 15, 0, 7 and the pad 7
        using var dx = Device.Upload<float>(x);
        using var codes = Device.Allocate<byte>(2);
        using var absmax = Device.Allocate<float>(1);
        Poison.Fill(codes, (byte)0xEE);
        Blockwise.Quantize<float>(dx, map, 64, codes, absmax);
        Assert.Equal(new byte[] { 0xF0, 0x77 }, codes.ToArray());
        Assert.Equal(new byte[] { 0xF0, 0x77 }, BlockwiseReference.Quantize<float>(x, map, 64).Codes);
    }

    [Fact]
    public void StochasticRoundingIsSeededDeterministicAndUnbiased()
    {
        var seed = Seeded.Create();
        var map = CodeBook.DynamicSigned;
        int n = 8192, b = 256;
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = i % b == 0 ? 1f : 0.3f; // 0.3 lies between two codes
        ulong s = (ulong)seed.Seed * 0x9E3779B97F4A7C15UL + 1;
        using var dx = Device.Upload<float>(x);
        using var codes = Device.Allocate<byte>(n);
        using var absmax = Device.Allocate<float>(n / b);
        Blockwise.Quantize<float>(dx, map, b, codes, absmax, new BlockwiseOptions { StochasticSeed = s, StochasticOffset = 7 });
        var c = codes.ToArray();
        var (refCodes, _) = BlockwiseReference.Quantize<float>(x, map, b, s, 7);
        Compare.Exact<byte>(c, refCodes, "stochastic codes vs reference", seed);
        var (otherSeed, _) = BlockwiseReference.Quantize<float>(x, map, b, s + 1, 7);
        Assert.False(otherSeed.AsSpan().SequenceEqual(refCodes), $"another seed must give other codes {seed.Tag}");
        var (otherOffset, _) = BlockwiseReference.Quantize<float>(x, map, b, s, 8);
        Assert.False(otherOffset.AsSpan().SequenceEqual(refCodes), $"another Philox stream must give other codes {seed.Tag}");
        // The random number of element i is Philox's word i % 4 of block i / 4 under (seed, offset).
        Assert.Equal(Kernels.Runtime.Philox.ToUniform(Kernels.Runtime.Philox.Generate(s, 7, 1).Y), BlockwiseMath.Uniform(s, 7, 5));
        var (nearest, _) = BlockwiseReference.Quantize<float>(x, map, b);
        Assert.Equal(2, c.Where((_, i) => i % b != 0).Distinct().Count());
        double mean = 0;
        int count = 0;
        for (int i = 0; i < n; i++)
            if (i % b != 0) { mean += map.Values[c[i]]; count++; }
        mean /= count;
        double spread = map.Values[nearest[1] + 1] - map.Values[nearest[1] - 1];
        Assert.True(Math.Abs(mean - 0.3) < 0.05 * spread, $"stochastic mean {mean} vs 0.3 {seed.Tag}");
    }

    [Fact]
    public void BadInputThrowsAndLeavesDestinationsUnchanged()
    {
        var map = CodeBook.DynamicSigned;
        int n = 100;
        using var x = Device.Upload<float>(new float[n]);
        using var codes = Device.Allocate<byte>(n);
        using var absmax = Device.Allocate<float>(4);
        using var shortAbsmax = Device.Allocate<float>(3);
        using var shortCodes = Device.Allocate<byte>(n - 1);
        using var y = Device.Allocate<float>(n);
        using var wide = Device.Upload<float>(new float[2 * n], 10, 20);
        Poison.Fill(codes, (byte)0x5A);
        Poison.Fill(absmax);
        Poison.Fill(y);
        var codesBefore = codes.ToArray();
        var absmaxBefore = absmax.ToArray();
        var yBefore = y.ToArray();

        Assert.Throws<ArgumentException>(() => Blockwise.Quantize<float>(x, map, 32, codes, shortAbsmax));
        Assert.Throws<ArgumentOutOfRangeException>(() => Blockwise.Quantize<float>(x, map, 48, codes, absmax));
        Assert.Throws<ArgumentOutOfRangeException>(() => Blockwise.Quantize<float>(x, map, 16, codes, absmax));
        Assert.Throws<ArgumentOutOfRangeException>(() => Blockwise.Quantize<float>(x, map, 8192, codes, absmax));
        Assert.Throws<ArgumentException>(() => Blockwise.Quantize<float>(x, map, 32, shortCodes, absmax));
        Assert.Throws<ArgumentException>(() => Blockwise.Quantize<float>(x, CodeBook.NF4, 32, codes, absmax)); // 4-bit needs 50 bytes
        Assert.Throws<ArgumentException>(() => Blockwise.Quantize<float>(wide.Span.Slice(.., ..5).AsReadOnly(), map, 32, codes, absmax)); // strided
        using var counter2 = Device.Allocate<long>(2);
        Assert.Throws<ArgumentException>(() => Blockwise.Quantize<float>(x, map, 32, codes, absmax, new BlockwiseOptions { NonFiniteCount = counter2 }));
        Assert.Throws<ArgumentException>(() => Blockwise.Dequantize<float>(codes, shortAbsmax, map, 32, y));
        Assert.Throws<ArgumentException>(() => Blockwise.Dequantize<float>(shortCodes, absmax, map, 32, y));
        Assert.Throws<ArgumentOutOfRangeException>(() => Blockwise.Dequantize<float>(codes, absmax, map, 100, y));
        Assert.Throws<ArgumentException>(() => Blockwise.Dequantize<float>(codes, absmax, CodeBook.FP4, 32, y));
        Assert.Throws<NotSupportedException>(() => Blockwise.Quantize<double>(Device.Allocate<double>(n), map, 32, codes, absmax));
        Assert.Throws<ArgumentNullException>(() => Blockwise.Quantize<float>(x, null!, 32, codes, absmax));
        using (var other = Devices.CpuWarp32.Allocate<float>(4))
            Assert.Throws<ArgumentException>(() => Blockwise.Quantize<float>(x, map, 32, codes, other));

        Device.Synchronize();
        Poison.AssertUnchanged(codes, codesBefore, "codes");
        Compare.Exact<int>(absmax.ToArray().Select(BitConverter.SingleToInt32Bits).ToArray(), absmaxBefore.Select(BitConverter.SingleToInt32Bits).ToArray(), "absmax unchanged");
        Compare.Exact<int>(y.ToArray().Select(BitConverter.SingleToInt32Bits).ToArray(), yBefore.Select(BitConverter.SingleToInt32Bits).ToArray(), "output unchanged");
    }

    [Fact]
    public void SizesAndCounts()
    {
        Assert.Equal(4, Blockwise.BlockCount(1000, 256));
        Assert.Equal(0, Blockwise.BlockCount(0, 256));
        Assert.Equal(1L << 32, Blockwise.BlockCount(1L << 40, 256)); // 64-bit lengths
        Assert.Equal(1001, Blockwise.CodeBytes(1001, CodeBook.DynamicSigned));
        Assert.Equal(501, Blockwise.CodeBytes(1001, CodeBook.NF4));
        Assert.Equal(3L << 40, Blockwise.CodeBytes(3L << 41, CodeBook.FP4));
        using var x = Device.Allocate<float>(0);
        using var codes = Device.Allocate<byte>(0);
        using var absmax = Device.Allocate<float>(0);
        Blockwise.Quantize<float>(x, CodeBook.DynamicSigned, 64, codes, absmax); // empty input: nothing to do
    }
}

public class BlockwiseGeometryTests
{
    // The GPU runs 256-thread groups, the CPU tests 4: the tile geometry (blocks per tile, threads per block) differs, the
    // codes must not. Any group size gives the same result, so changing it while other tests run is harmless.
    [Theory]
    [InlineData(16, "dynamic-signed", 64)]
    [InlineData(16, "nf4", 32)]
    [InlineData(8, "dynamic-signed", 4096)]
    [InlineData(16, "fp4", 1024)]
    public void GroupSizeDoesNotChangeCodes(int groupSize, string bookName, int blockSize)
    {
        var seed = Seeded.Create();
        var map = CodeBook.All.Single(b => b.Name == bookName);
        int n = 3 * Math.Max(blockSize, groupSize * 32) + 77;
        var x = seed.Normal(n);
        var (refCodes, refAbsmax) = BlockwiseReference.Quantize<float>(x, map, blockSize);
        var device = Devices.CpuSmall;
        using var dx = device.Upload<float>(x);
        using var codes = device.Allocate<byte>(refCodes.Length);
        using var absmax = device.Allocate<float>(refAbsmax.Length);
        int saved = Blockwise.CpuGroupSize;
        try
        {
            Blockwise.CpuGroupSize = groupSize;
            Blockwise.Quantize(dx, map, blockSize, codes, absmax);
            device.Synchronize();
        }
        finally { Blockwise.CpuGroupSize = saved; }
        Compare.Exact<byte>(codes.ToArray(), refCodes, $"group {groupSize} codes", seed);
        Compare.Exact<float>(absmax.ToArray(), refAbsmax, $"group {groupSize} absmax", seed);
    }
}

public class BlockwiseTieTests
{
    // With absmax exactly 1 the kernel searches x itself, so every midpoint must take the lower code and the next float
    // above it the upper code, on the device as in CodeBook.NearestIndex.
    [Fact]
    public void DeviceQuantizeSendsEveryExactMidpointToTheLowerCode()
    {
        foreach (var map in CodeBook.All)
        {
            var x = new List<float> { 1f };
            var expected = new List<int> { map.PlusOneCode };
            for (int i = 0; i < map.Midpoints.Length; i++)
            {
                float m = map.Midpoints[i];
                if (Math.Abs(m) > 1f) continue;
                x.Add(m); expected.Add(map.SortedCodes[i]);
                x.Add(MathF.BitIncrement(m)); expected.Add(map.SortedCodes[i + 1]);
            }
            int n = x.Count;
            var device = Devices.CpuSmall;
            using var dx = device.Upload<float>(x.ToArray());
            using var codes = device.Allocate<byte>((nint)Blockwise.CodeBytes(n, map));
            using var absmax = device.Allocate<float>(1);
            Blockwise.Quantize(dx, map, 1024, codes, absmax);
            var c = codes.ToArray();
            Assert.Equal(1f, absmax.ToArray()[0]);
            for (int i = 0; i < n; i++)
            {
                int code = map.Bits == 8 ? c[i] : (c[i >> 1] >> ((i & 1) == 0 ? 4 : 0)) & 0xF;
                Assert.True(expected[i] == code, $"{map}: x={x[i]:R} gave code {code}, expected {expected[i]}");
            }
            // The reference computes its own bounds and counts them linearly: it must agree on every one of them.
            Compare.Exact<byte>(c, BlockwiseReference.Quantize<float>(x.ToArray(), map, 1024).Codes, $"{map}: midpoints vs reference");
        }
    }

    // Values a block of absmax 0.75 maps onto every bound of the book and its two neighbouring floats (the scaled
    // value is then x · fl(1/0.75), not x itself): the nearest and the stochastic codes of kernel and reference.
    [Fact]
    public void KernelAndReferenceAgreeAroundEveryBoundOfAScaledBlock()
    {
        var seed = Seeded.Create();
        ulong stochastic = (ulong)seed.Seed + 11;
        foreach (var map in CodeBook.All)
        {
            var x = new List<float> { 0.75f };
            foreach (float m in map.Midpoints)
                foreach (float y in new[] { MathF.BitDecrement(m), m, MathF.BitIncrement(m) })
                    if (Math.Abs(y * 0.75f) <= 0.75f) x.Add(y * 0.75f);
            var device = Devices.CpuSmall;
            using var dx = device.Upload<float>(x.ToArray());
            using var codes = device.Allocate<byte>((nint)Blockwise.CodeBytes(x.Count, map));
            using var absmax = device.Allocate<float>(1);
            Blockwise.Quantize(dx, map, 2048, codes, absmax);
            Compare.Exact<byte>(codes.ToArray(), BlockwiseReference.Quantize<float>(x.ToArray(), map, 2048).Codes, $"{map} nearest", seed);
            Blockwise.Quantize(dx, map, 2048, codes, absmax, new BlockwiseOptions { StochasticSeed = stochastic });
            Compare.Exact<byte>(codes.ToArray(), BlockwiseReference.Quantize<float>(x.ToArray(), map, 2048, stochastic).Codes, $"{map} stochastic", seed);
        }
    }
}

/// <summary>
/// Facts the reference must reproduce that come from bitsandbytes' definitions, not from either implementation: codes
/// worked out by hand from the published tables.
/// </summary>
public class BlockwiseReferenceFactTests
{
    [Fact]
    public void HandWorkedCodesOfTheDynamicMapAndNf4()
    {
        // 8-bit dynamic-signed, absmax 2: x/absmax = 1, −0.5, 0, 0.25 → 255 (1.0), the nearest to −0.5, 127 (0) and
        // 201 (0.24765624, nearer than 0.26171875).
        var signed = CodeBook.DynamicSigned;
        float[] x = [2f, -1f, 0f, 0.5f];
        var (codes, absmax) = BlockwiseReference.Quantize<float>(x, signed, 32);
        Assert.Equal(2f, absmax[0]);
        Assert.Equal(255, codes[0]);
        Assert.Equal(127, codes[2]);
        Assert.Equal(201, codes[3]);
        // −0.5 is not in the map: nearest by exact (double) distance over the whole table, first index on ties.
        int best = 0;
        for (int c = 1; c < 256; c++)
            if (Math.Abs(signed.Values[c] + 0.5) < Math.Abs(signed.Values[best] + 0.5)) best = c;
        Assert.Equal(best, codes[1]);

        // NF4, absmax 1: 1 → 15, −1 → 0, 0 → 7, 0.08 → 8 (0.0795803), 0.5 → 12 (0.4407098 is nearer than 0.5626170);
        // five elements pack as F0 78 C7, the last low nibble the pad, the code of 0.
        float[] y = [1f, -1f, 0f, 0.08f, 0.5f];
        var (nf4, _) = BlockwiseReference.Quantize<float>(y, CodeBook.NF4, 64);
        Assert.Equal(new byte[] { 0xF0, 0x78, 0xC7 }, nf4);

        // FP4 (codes by nibble): 1 → 3 (12/12), −1 → 11, 0.3 → 4 (4/12 = 0.333 is nearer than 3/12), −0.1 → 14
        // (−2/12 = −0.1667 vs −0.0052: 0.0667 vs 0.0948), a tiny positive → 0 (never −0, code 8).
        float[] z = [1f, -1f, 0.3f, -0.1f, 1e-6f, 0f];
        var (fp4, _) = BlockwiseReference.Quantize<float>(z, CodeBook.FP4, 64);
        Assert.Equal(new byte[] { 0x3B, 0x4E, 0x00 }, fp4);
    }

    [Fact]
    public void DequantizeIsTheCodeValueTimesAbsmaxRoundedOnce()
    {
        // 4-bit: element 2j in the high nibble; the value is Values[code] · absmax in fp32, then one rounding.
        byte[] codes = [0xF0, 0x7F];
        float[] absmax = [3f];
        var f32 = new float[4];
        BlockwiseReference.Dequantize<float>(codes, absmax, CodeBook.NF4, 64, f32);
        Assert.Equal(new[] { 3f, -3f, 0f, 3f }, f32);
        var bf16 = new Kernels.Tensors.BFloat16[1];
        // 0.0795803 · 3 = 0.2387409 in fp32 → bf16 0x3E74 (0.23828125; 0x3E75 would be 0.2392578).
        BlockwiseReference.Dequantize<Kernels.Tensors.BFloat16>(new byte[] { 0x80 }, absmax, CodeBook.NF4, 64, bf16);
        Assert.Equal((ushort)0x3E74, bf16[0].Bits);
    }
}
