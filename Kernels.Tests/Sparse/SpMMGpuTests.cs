using Kernels.Sparse;
using Kernels.Tensors;
using Kernels.Tests.Harness;
using Xunit;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Tests.Sparse;

/// <summary>SpMM on a real GPU (real mma.sync, ld.global.nc.v4, cp.async) against the f64 reference; skipped without CUDA.</summary>
public class SpMMGpuTests
{
    [Theory]
    [InlineData(1000, 1100, 1, 0.0)]    // dense tiles (overflow loop), one token
    [InlineData(2048, 4096, 16, 0.8)]   // split-K
    [InlineData(1030, 999, 37, 0.9)]    // awkward edges, several N tiles
    [InlineData(512, 512, 200, 0.7)]    // wide tiles
    public void SpMMMatchesReferenceOnGpu(int m, int k, int n, double sparsity)
    {
        var device = Devices.RequireCuda();
        var seed = Seeded.Create();
        var w = SparseTestData.Weights(seed, m, k, sparsity, ElementType.Float16);
        var xf = SparseTestData.Activations(seed, n, k, ElementType.Float16);
        var host = TiledCslEncoder.Encode(SparseTestData.ToHalf(w), m, k);
        var expected = new double[(long)n * m];
        SpMMReference.Multiply(xf, host, expected);
        using var matrix = TiledCslMatrix.Upload(device, host);
        using var x = device.Upload(SparseTestData.ToDeviceHalf(xf), n, k);
        using var y = device.Allocate<DeviceHalf>(n, m);
        foreach (var path in new[] { SpMMPath.Sparse, SpMMPath.Dense, SpMMPath.Auto })
        {
            Poison.Fill(y);
            var plan = SpMM.Multiply(x.ReadOnlySpan, matrix, y.Span, path);
            var actual = Compare.ToFloat<DeviceHalf>(y.ToArray());
            string what = $"CUDA SpMM {m}×{k} N={n} {sparsity:P0} {plan}";
            Poison.AssertAllWritten<float>(actual, what, seed);
            Compare.Close(actual, expected, Compare.F16, what, seed);
        }
    }
}
