using Kernels.Tensors;
using Kernels.Tests.Harness;

namespace Kernels.Tests.Sparse;

/// <summary>Weights with clustered density: some 128×64 tiles full, some empty, the rest at the target sparsity; random signed values.</summary>
internal static class SparseTestData
{
    /// <summary>
    /// Row-major M×K floats that are exactly representable in the value type (so encode → decode compares exactly).
    /// Values are uniform in ±[0.05, 1) with random sign, never zero. With <paramref name="clustered"/>, tile (i, j)
    /// is full when (i + j) % 5 == 1 and empty when (i + j) % 5 == 3 (needs a grid of a few tiles to matter).
    /// </summary>
    public static float[] Weights(Seeded seed, int m, int k, double sparsity, ElementType valueType, bool clustered = true)
    {
        var w = new float[(long)m * k];
        var r = seed.Random;
        for (int row = 0; row < m; row++)
            for (int col = 0; col < k; col++)
            {
                int cls = clustered ? (row / 128 + col / 64) % 5 : 0;
                bool keep = sparsity >= 1.0 ? false
                    : sparsity <= 0.0 ? true
                    : cls == 1 || (cls != 3 && r.NextDouble() >= sparsity);
                if (!keep) continue;
                float v = (float)(0.05 + 0.95 * r.NextDouble()) * (r.Next(2) == 0 ? -1 : 1);
                w[(long)row * k + col] = Round(v, valueType);
            }
        return w;
    }

    /// <summary>Activations: N×K uniform in [−1, 1), rounded to the value type.</summary>
    public static float[] Activations(Seeded seed, int n, int k, ElementType valueType)
    {
        var x = seed.Uniform((long)n * k, -1f, 1f);
        for (int i = 0; i < x.Length; i++) x[i] = Round(x[i], valueType);
        return x;
    }

    public static float Round(float v, ElementType valueType) =>
        valueType == ElementType.BFloat16 ? BFloat16.FromFloat(v).ToFloat() : (float)(System.Half)v;

    public static System.Half[] ToHalf(float[] v) => v.Select(f => (System.Half)f).ToArray();

    public static ILGPU.Half[] ToDeviceHalf(float[] v) => v.Select(f => (ILGPU.Half)f).ToArray();

    public static BFloat16[] ToBFloat16(float[] v) => v.Select(BFloat16.FromFloat).ToArray();

    /// <summary>16-bit patterns of <paramref name="v"/> in the value type.</summary>
    public static ushort[] Bits(float[] v, ElementType valueType) => valueType == ElementType.BFloat16
        ? v.Select(f => BFloat16.FromFloat(f).Bits).ToArray()
        : v.Select(f => BitConverter.HalfToUInt16Bits((System.Half)f)).ToArray();
}
