using Kernels.Tensors;
using Xunit;

namespace Kernels.Tests.Harness;

/// <summary>Relative-error and exact comparisons with bounds fixed per element type (docs/design.md §5). NaN never passes.</summary>
public static class Compare
{
    /// <summary>Bound for f32 arithmetic.</summary>
    public const double F32 = 1e-5;
    /// <summary>Bound for f16 operands with f32 accumulation.</summary>
    public const double F16 = 2e-3;
    /// <summary>Bound for bf16 operands with f32 accumulation.</summary>
    public const double BF16 = 1e-2;

    /// <summary>The bound for an element type.</summary>
    public static double BoundFor(ElementType type) => type switch
    {
        ElementType.Float32 => F32,
        ElementType.Float16 => F16,
        _ => BF16,
    };

    /// <summary>‖actual − expected‖₂ / ‖expected‖₂ (absolute norm when the reference is zero); +∞ when any NaN/Inf appears where the reference is finite.</summary>
    public static double RelativeError(ReadOnlySpan<float> actual, ReadOnlySpan<double> expected)
    {
        if (actual.Length != expected.Length) throw new ArgumentException($"length {actual.Length} vs {expected.Length}");
        double num = 0, den = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            if (!float.IsFinite(actual[i]) && double.IsFinite(expected[i])) return double.PositiveInfinity;
            double d = actual[i] - expected[i];
            num += d * d;
            den += expected[i] * expected[i];
        }
        return den == 0 ? Math.Sqrt(num) : Math.Sqrt(num / den);
    }

    /// <summary>Relative error of f32 results against an f32 reference.</summary>
    public static double RelativeError(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected)
    {
        var e = new double[expected.Length];
        for (int i = 0; i < e.Length; i++) e[i] = expected[i];
        return RelativeError(actual, e);
    }

    /// <summary>Asserts the relative error is within <paramref name="bound"/>.</summary>
    public static void Close(ReadOnlySpan<float> actual, ReadOnlySpan<double> expected, double bound, string what, Seeded? seed = null)
    {
        double err = RelativeError(actual, expected);
        Assert.True(err <= bound, $"{what}: relative error {err:E3} exceeds {bound:E1} {seed?.Tag}");
    }

    /// <summary>Asserts the relative error is within <paramref name="bound"/> (f32 reference).</summary>
    public static void Close(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected, double bound, string what, Seeded? seed = null)
    {
        double err = RelativeError(actual, expected);
        Assert.True(err <= bound, $"{what}: relative error {err:E3} exceeds {bound:E1} {seed?.Tag}");
    }

    /// <summary>Asserts exact element-wise equality and reports the first difference.</summary>
    public static void Exact<T>(ReadOnlySpan<T> actual, ReadOnlySpan<T> expected, string what, Seeded? seed = null) where T : IEquatable<T>
    {
        Assert.True(actual.Length == expected.Length, $"{what}: length {actual.Length} vs {expected.Length} {seed?.Tag}");
        for (int i = 0; i < actual.Length; i++)
            if (!actual[i].Equals(expected[i]))
                Assert.Fail($"{what}: first difference at {i}: {actual[i]} vs expected {expected[i]} {seed?.Tag}");
    }

    /// <summary>Widens device-typed host values to f32.</summary>
    public static float[] ToFloat<T>(ReadOnlySpan<T> values) where T : unmanaged
    {
        var f = new float[values.Length];
        ElementTypes.ToFloat(values, f);
        return f;
    }
}
