using Kernels.Quantization;
using Kernels.Tensors;
using Kernels.Tests.Harness;
using Xunit;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Tests.Quantization;

/// <summary>The kernels on a real GPU against the CPU reference (skipped without CUDA).</summary>
public class BlockwiseGpuTests
{
    [Theory]
    [InlineData("dynamic-signed", 256, 1 << 22)]
    [InlineData("dynamic-signed", 4096, (1 << 22) + 4097)]
    [InlineData("dynamic-signed", 32, 1000003)]
    [InlineData("nf4", 64, (1 << 22) + 1)]
    [InlineData("fp4", 4096, 1 << 20)]
    [InlineData("dynamic-unsigned", 1024, 1 << 20)]
    public void CudaCodesEqualReference(string bookName, int blockSize, int n)
    {
        var device = Devices.RequireCuda();
        var map = CodeBook.All.Single(b => b.Name == bookName);
        var seed = Seeded.Create();
        foreach (var type in new[] { "f32", "f16", "bf16" })
        {
            var xf = seed.Normal(n);
            if (map.Values[0] >= 0) for (int i = 0; i < n; i++) xf[i] = Math.Abs(xf[i]);
            xf[n / 3] = float.NaN;
            xf[n / 2] = float.PositiveInfinity;
            switch (type)
            {
                case "f32": Run(device, map, blockSize, ElementTypes.FromFloat<float>(xf), seed); break;
                case "f16": Run(device, map, blockSize, ElementTypes.FromFloat<DeviceHalf>(xf), seed); break;
                default: Run(device, map, blockSize, ElementTypes.FromFloat<BFloat16>(xf), seed); break;
            }
        }
    }

    private static void Run<T>(Kernels.Runtime.ComputeDevice device, CodeBook map, int blockSize, T[] host, Seeded seed)
        where T : unmanaged, IEquatable<T>
    {
        int n = host.Length;
        ulong? stochastic = blockSize == 256 ? 12345UL : null;
        var codesRef = new byte[Blockwise.CodeBytes(n, map)];
        var absmaxRef = new float[Blockwise.BlockCount(n, blockSize)];
        long badRef = BlockwiseReference.Quantize<T>(host, map, blockSize, codesRef, absmaxRef, stochastic);
        using var x = device.Upload<T>(host);
        using var codes = device.Allocate<byte>(codesRef.Length);
        using var absmax = device.Allocate<float>(absmaxRef.Length);
        using var counter = device.Allocate<long>(1);
        using var y = device.Allocate<T>(n);
        Blockwise.Quantize(x, map, blockSize, codes, absmax, new BlockwiseOptions { StochasticSeed = stochastic, NonFiniteCount = counter });
        Blockwise.Dequantize(codes, absmax, map, blockSize, y);
        device.Synchronize();
        Compare.Exact<byte>(codes.ToArray(), codesRef, $"CUDA {map} B={blockSize} {typeof(T).Name} codes", seed);
        Compare.Exact<float>(absmax.ToArray(), absmaxRef, "CUDA absmax", seed);
        Assert.Equal(badRef, counter.ToArray()[0]);
        var expected = new T[n];
        BlockwiseReference.Dequantize<T>(codesRef, absmaxRef, map, blockSize, expected);
        Compare.Exact<T>(y.ToArray(), expected, "CUDA dequantize", seed);
    }

    [Fact]
    public void CudaNestedMatchesReference()
    {
        var device = Devices.RequireCuda();
        var seed = Seeded.Create();
        int n = 64 * 300_000 + 5; // > 4096^1 blocks: the canonical mean takes two passes
        var x = seed.Normal(n);
        using var dx = device.Upload<float>(x);
        using var q = BlockwiseQuantized.Quantize(dx, CodeBook.NF4, 64, nested: true);
        var (codes, absmax) = BlockwiseReference.Quantize<float>(x, CodeBook.NF4, 64);
        var (nc, na, offset) = BlockwiseReference.QuantizeNested(absmax);
        Compare.Exact<byte>(q.Codes.ToArray(), codes, "codes", seed);
        Compare.Exact<byte>(q.NestedCodes!.ToArray(), nc, "nested codes", seed);
        Compare.Exact<float>(q.NestedAbsmax!.ToArray(), na, "nested absmax", seed);
        Assert.Equal(offset, q.NestedOffset!.ToArray()[0]);
    }
}
