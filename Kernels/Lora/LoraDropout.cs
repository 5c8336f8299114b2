using Kernels.Runtime;

namespace Kernels.Lora;

/// <summary>
/// LoRA dropout on the adapter input, drop(X) = mask ⊙ X / (1 − p), with a counter-based mask: element (m, k) of an
/// M×K input is kept iff <c>Philox.Uniform(Seed, Offset, m·K + k) ≥ P</c>. The mask is a pure function of
/// (seed, offset, element), so the backward pass regenerates it instead of storing it (0 mask bytes), and the GPU
/// kernels, the CPU accelerator and <see cref="LoraReference"/> all see the same mask. <c>default</c> is no dropout;
/// with <see cref="P"/> = 0 no random numbers are drawn at all.
/// </summary>
public readonly struct LoraDropout
{
    /// <summary>Drop probability in [0, 1).</summary>
    public readonly float P;

    /// <summary>Philox key.</summary>
    public readonly ulong Seed;

    /// <summary>Philox stream: use a different offset per layer and step so masks do not repeat.</summary>
    public readonly ulong Offset;

    /// <summary>1 / (1 − <see cref="P"/>) in f32: the factor applied to kept elements.</summary>
    public readonly float KeepScale;

    /// <summary>Creates a dropout of probability <paramref name="p"/> keyed on (<paramref name="seed"/>, <paramref name="offset"/>).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="p"/> is not in [0, 1).</exception>
    public LoraDropout(float p, ulong seed, ulong offset = 0)
    {
        if (!(p >= 0f && p < 1f))
            throw new ArgumentOutOfRangeException(nameof(p), p, "Dropout probability must be in [0, 1).");
        P = p;
        Seed = seed;
        Offset = offset;
        KeepScale = 1f / (1f - p);
    }

    /// <summary>No dropout (the same as <c>default</c>).</summary>
    public static LoraDropout None => default;

    /// <summary>True when <see cref="P"/> &gt; 0, i.e. a mask is drawn.</summary>
    public bool Active => P > 0f;

    /// <summary>True when element <paramref name="element"/> (= m·K + k) is kept. Kernel-usable.</summary>
    public bool Keeps(long element) => !Active || Philox.Uniform(Seed, Offset, (ulong)element) >= P;

    /// <summary>The factor drop(X) multiplies element <paramref name="element"/> by: 0, or <see cref="KeepScale"/> (1 when inactive). Kernel-usable.</summary>
    public float Factor(long element)
    {
        if (!Active) return 1f;
        return Philox.Uniform(Seed, Offset, (ulong)element) >= P ? KeepScale : 0f;
    }

    /// <inheritdoc />
    public override string ToString() => Active ? $"dropout p={P} seed={Seed} offset={Offset}" : "no dropout";
}
