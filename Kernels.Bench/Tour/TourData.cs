using Kernels.Tensors;

namespace Kernels.Bench.Tour;

/// <summary>
/// What tour rows share on the host: seeded inputs (Gaussian, rounded to the device element type with the widened copy
/// the reference reads) and the comparison of a device result with an f64 reference (relative L2 error, +∞ when the
/// device wrote a non-finite value).
/// </summary>
public static class TourData
{
    /// <summary>
    /// <paramref name="n"/> Box–Muller normals of standard deviation <paramref name="std"/> from
    /// <paramref name="random"/>, each formed in f64 and rounded once to f32.
    /// </summary>
    public static float[] Normal(Random random, long n, float std = 1f)
    {
        var x = new float[n];
        for (long i = 0; i < n; i++)
        {
            double u1 = 1.0 - random.NextDouble(), u2 = random.NextDouble();
            x[i] = (float)(std * Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2));
        }
        return x;
    }

    /// <summary>
    /// Normals rounded to <typeparamref name="T"/> (the device copy) and widened back (the reference's copy), so both
    /// sides see the same values.
    /// </summary>
    public static Operand<T> Rounded<T>(Random random, long n, float std = 1f) where T : unmanaged =>
        Operand<T>.From(Normal(random, n, std));

    /// <summary>
    /// Relative L2 error ‖got − expected‖ / ‖expected‖ (the absolute norm when the reference is all zeros), or +∞ when
    /// a device value is not finite.
    /// </summary>
    public static double RelativeError(ReadOnlySpan<float> got, ReadOnlySpan<double> expected)
    {
        double num = 0, den = 0;
        for (int i = 0; i < got.Length; i++)
        {
            if (!float.IsFinite(got[i])) return double.PositiveInfinity;
            double d = got[i] - expected[i];
            num += d * d;
            den += expected[i] * expected[i];
        }
        return den == 0 ? Math.Sqrt(num) : Math.Sqrt(num / den);
    }

    /// <summary><see cref="RelativeError(ReadOnlySpan{float}, ReadOnlySpan{double})"/> of a device result of any element type.</summary>
    public static double RelativeError<T>(ReadOnlySpan<T> got, ReadOnlySpan<double> expected) where T : unmanaged
    {
        var f = new float[got.Length];
        ElementTypes.ToFloat(got, f);
        return RelativeError(f, expected);
    }

    /// <summary><see cref="RelativeError(ReadOnlySpan{float}, ReadOnlySpan{double})"/> against an f32 reference.</summary>
    public static double RelativeError(ReadOnlySpan<float> got, ReadOnlySpan<float> expected)
    {
        var e = new double[expected.Length];
        for (int i = 0; i < e.Length; i++) e[i] = expected[i];
        return RelativeError(got, e);
    }

    /// <summary>Rows <paramref name="rows"/> of a row-major matrix <paramref name="all"/> of <paramref name="width"/> columns, widened to f32, one after another.</summary>
    public static float[] Rows<T>(ReadOnlySpan<T> all, int width, IReadOnlyList<int> rows) where T : unmanaged
    {
        var f = new float[rows.Count * width];
        for (int q = 0; q < rows.Count; q++)
            ElementTypes.ToFloat(all.Slice((int)((long)rows[q] * width), width), f.AsSpan(q * width, width));
        return f;
    }

    /// <summary>
    /// The relative error of rows <paramref name="rows"/> of a device result (row-major, <paramref name="width"/>
    /// columns) against <paramref name="reference"/>, which gives row i's expected values.
    /// </summary>
    public static double RowError<T>(ReadOnlySpan<T> got, int width, IReadOnlyList<int> rows, Func<int, double[]> reference)
        where T : unmanaged
    {
        var expected = new double[rows.Count * width];
        for (int q = 0; q < rows.Count; q++) reference(rows[q]).AsSpan(0, width).CopyTo(expected.AsSpan(q * width, width));
        return RelativeError(Rows(got, width, rows), expected);
    }
}

/// <summary>An input as the device gets it (<see cref="Typed"/>) and as the reference reads it (<see cref="Host"/>, the same values in f32).</summary>
/// <param name="Typed">The values in the device element type.</param>
/// <param name="Host">The same values widened to f32.</param>
public sealed record Operand<T>(T[] Typed, float[] Host) where T : unmanaged
{
    /// <summary>Rounds <paramref name="values"/> to <typeparamref name="T"/> and widens them back.</summary>
    public static Operand<T> From(ReadOnlySpan<float> values)
    {
        var typed = ElementTypes.FromFloat<T>(values);
        var host = new float[typed.Length];
        ElementTypes.ToFloat<T>(typed, host);
        return new Operand<T>(typed, host);
    }
}
