using ILGPU;
using Kernels.Runtime;
using Kernels.Tensors;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Optimizers;

/// <summary>
/// How an updated f32 parameter is written back to its storage type: round to nearest even, or (optionally, for f16
/// and bf16) stochastically, rounding up with probability equal to the distance from the lower neighbour over the gap,
/// so that updates smaller than half an ulp are not lost on average.
/// </summary>
internal interface IParameterElement<T> where T : unmanaged
{
    float ToFloat(T value);

    /// <summary>Rounds <paramref name="x"/>; <paramref name="stochastic"/> selects stochastic rounding with the 32 random bits.</summary>
    T Round(float x, bool stochastic, uint random);
}

internal readonly struct F32Parameter : IParameterElement<float>
{
    public float ToFloat(float value) => value;
    public float Round(float x, bool stochastic, uint random) => x;
}

internal readonly struct BF16Parameter : IParameterElement<BFloat16>
{
    public float ToFloat(BFloat16 value) => value.ToFloat();

    public BFloat16 Round(float x, bool stochastic, uint random)
    {
        if (!stochastic || !UpdateGuard.IsFinite(x)) return BFloat16.FromFloat(x);
        // bf16 is the top half of the f32 pattern: adding 16 uniform bits below the cut and truncating rounds the
        // magnitude up with probability (dropped bits)/2^16, for either sign.
        uint bits = Interop.FloatAsInt(x) + (random & 0xFFFFu);
        return new BFloat16((ushort)(bits >> 16));
    }
}

internal readonly struct F16Parameter : IParameterElement<DeviceHalf>
{
    public float ToFloat(DeviceHalf value) => Fp16.Widen(value);

    public DeviceHalf Round(float x, bool stochastic, uint random)
    {
        var nearest = Fp16.Narrow(x);
        if (!stochastic || !UpdateGuard.IsFinite(x)) return nearest;
        uint nb = Interop.FloatAsInt(nearest);
        uint magnitude = nb & 0x7FFFu;
        if (magnitude >= 0x7C00u) return nearest; // overflowed to Inf: nothing to dither
        float a = MathF.Abs(x);
        float na = (float)Interop.IntAsFloat((ushort)magnitude);
        if (na == a) return nearest;
        // Consecutive magnitudes are consecutive bit patterns (subnormals included).
        uint lo = na < a ? magnitude : magnitude - 1;
        uint hi = lo + 1;
        float loValue = (float)Interop.IntAsFloat((ushort)lo);
        float hiValue = (float)Interop.IntAsFloat((ushort)hi);
        float up = (a - loValue) / (hiValue - loValue);
        float u = (random >> 8) * (1f / 16777216f);
        uint chosen = u < up ? hi : lo;
        return Interop.IntAsFloat((ushort)(chosen | (nb & 0x8000u)));
    }
}

/// <summary>
/// Random bits for stochastic rounding from the project's counter-based <see cref="Philox"/> generator: element i
/// takes word i mod 4 of the block for counter (i / 4, step) under the seed, so one Philox call serves a 4-element
/// chunk and a result depends only on (seed, step, index) — the same on every device, in any launch geometry.
/// </summary>
internal static class StochasticBits
{
    public static UInt4Block Chunk(ulong seed, long step, long firstIndex) => Philox.Generate(seed, (ulong)step, (ulong)firstIndex >> 2);

    public static uint Of(ulong seed, long step, long index)
    {
        var block = Chunk(seed, step, index);
        uint lane = (uint)(index & 3);
        return lane == 0 ? block.X : lane == 1 ? block.Y : lane == 2 ? block.Z : block.W;
    }
}
