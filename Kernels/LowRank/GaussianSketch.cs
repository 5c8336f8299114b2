using ILGPU;
using ILGPU.Runtime;
using Kernels.Runtime;

namespace Kernels.LowRank;

/// <summary>
/// The Gaussian test matrix Ω of randomized SVD, generated on the device from Philox (a pure function of seed and
/// element index, so a seed reproduces the sketch on every device and Ω never crosses the bus).
/// </summary>
internal static class GaussianSketch
{
    internal static void FillKernel(Index1D index, ArrayView<float> omega, long count, ulong seed)
    {
        long pairs = (count + 1) / 2;
        for (long e = index; e < pairs; e += (long)Grid.DimX * Group.DimX)
        {
            var bits = Philox.Generate(seed, 0x5EED0A11UL, (ulong)e);
            // Box–Muller on two uniforms in (0, 1]: u1 from the high 24 bits, +2^-25 keeps log away from 0.
            float u1 = Philox.ToUniform(bits.X) + 1.0f / 33554432.0f;
            float u2 = Philox.ToUniform(bits.Y);
            float radius = MathF.Sqrt(-2f * MathF.Log(u1));
            float angle = 6.28318530718f * u2;
            omega[2 * e] = radius * MathF.Cos(angle);
            if (2 * e + 1 < count) omega[2 * e + 1] = radius * MathF.Sin(angle);
        }
    }

    internal static void Fill(ComputeDevice device, ArrayView<float> omega, long count, ulong seed)
    {
        if (count == 0) return;
        var kernel = device.GetKernel((typeof(GaussianSketch), nameof(FillKernel)), acc =>
            acc.LoadCatalogAutoGroupedKernel<Index1D, ArrayView<float>, long, ulong>(FillKernel));
        int threads = device.GroupsFor((count + 1) / 2, device.ElementwiseGroupSize) * device.ElementwiseGroupSize;
        kernel(device.Stream, threads, omega, count, seed);
    }
}
