namespace Kernels.Tests.Harness;

/// <summary>
/// Random inputs drawn fresh per test from a seed that every failure message prints. Set <c>KERNELS_TEST_SEED</c> to
/// replay a failure.
/// </summary>
public sealed class Seeded
{
    private readonly Random random;

    private Seeded(int seed)
    {
        Seed = seed;
        random = new Random(seed);
    }

    /// <summary>The seed of this generator.</summary>
    public int Seed { get; }

    /// <summary>A generator seeded from <c>KERNELS_TEST_SEED</c> or, when unset, a fresh random seed.</summary>
    public static Seeded Create()
    {
        var fixedSeed = Environment.GetEnvironmentVariable("KERNELS_TEST_SEED");
        return new Seeded(int.TryParse(fixedSeed, out var s) ? s : Random.Shared.Next());
    }

    /// <summary>A generator with a given seed.</summary>
    public static Seeded With(int seed) => new(seed);

    /// <summary>The underlying generator.</summary>
    public Random Random => random;

    /// <summary>Text to append to assertion messages.</summary>
    public string Tag => $"(seed {Seed}; rerun with KERNELS_TEST_SEED={Seed})";

    /// <summary>Standard normal samples (Box–Muller) scaled by <paramref name="std"/>.</summary>
    public float[] Normal(long n, float std = 1f)
    {
        var x = new float[n];
        for (long i = 0; i < n; i++) x[i] = std * NextNormal();
        return x;
    }

    /// <summary>Uniform samples in [lo, hi).</summary>
    public float[] Uniform(long n, float lo = 0f, float hi = 1f)
    {
        var x = new float[n];
        for (long i = 0; i < n; i++) x[i] = lo + (hi - lo) * (float)random.NextDouble();
        return x;
    }

    /// <summary>One standard normal sample.</summary>
    public float NextNormal()
    {
        double u1 = 1.0 - random.NextDouble();
        double u2 = random.NextDouble();
        return (float)(Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2));
    }

    /// <summary>An integer in [lo, hi).</summary>
    public int Next(int lo, int hi) => random.Next(lo, hi);
}
