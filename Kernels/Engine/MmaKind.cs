using Kernels.Cuda.Primitives;

namespace Kernels.Engine;

/// <summary>The element type the tensor cores multiply (f16 or bf16 inputs, f32 accumulation), as a struct generic.</summary>
public interface IMmaKind
{
    /// <summary>True for bf16 inputs.</summary>
    bool IsBFloat16 { get; }

    /// <summary>One <c>mma.sync.m16n8k16</c> on packed 16-bit fragments (see <see cref="Mma"/>); <paramref name="scratch"/> serves the CPU emulation.</summary>
    MmaFragment Multiply(MmaFragment c, uint a0, uint a1, uint a2, uint a3, uint b0, uint b1, WarpScratch scratch);
}

/// <summary>fp16 × fp16 → f32.</summary>
public readonly struct F16Mma : IMmaKind
{
    /// <inheritdoc />
    public bool IsBFloat16 => false;

    /// <inheritdoc />
    public MmaFragment Multiply(MmaFragment c, uint a0, uint a1, uint a2, uint a3, uint b0, uint b1, WarpScratch scratch) =>
        Mma.F16(c, a0, a1, a2, a3, b0, b1, scratch);
}

/// <summary>bf16 × bf16 → f32.</summary>
public readonly struct BF16Mma : IMmaKind
{
    /// <inheritdoc />
    public bool IsBFloat16 => true;

    /// <inheritdoc />
    public MmaFragment Multiply(MmaFragment c, uint a0, uint a1, uint a2, uint a3, uint b0, uint b1, WarpScratch scratch) =>
        Mma.BF16(c, a0, a1, a2, a3, b0, b1, scratch);
}
