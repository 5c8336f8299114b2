using Kernels.Tensors;

namespace Kernels.Quantization;

/// <summary>Optional behaviour of <see cref="Blockwise.Quantize{T}(ReadOnlyDeviceTensorSpan{T}, CodeBook, int, DeviceTensorSpan{byte}, DeviceTensorSpan{float}, BlockwiseOptions?)"/>; the defaults give deterministic round-to-nearest codes.</summary>
public sealed record BlockwiseOptions
{
    /// <summary>
    /// When set, round stochastically instead of to nearest: x between the sorted code values lo ≤ x ≤ hi rounds up with
    /// probability (x − lo)/(hi − lo), using the counter-based Philox4x32-10 keyed on (seed, <see cref="StochasticOffset"/>, element index). The same
    /// seed gives the same codes on every device and in <see cref="BlockwiseReference"/>. Off (null) by default.
    /// </summary>
    public ulong? StochasticSeed { get; init; }

    /// <summary>
    /// The Philox stream (counter word 2–3) of stochastic rounding, e.g. an optimizer step, so one seed can serve many
    /// calls without reusing random numbers. Ignored unless <see cref="StochasticSeed"/> is set. Default 0.
    /// </summary>
    public ulong StochasticOffset { get; init; }

    /// <summary>
    /// When set (a one-element tensor on the input's device), receives the number of NaN and ±∞ input elements, so
    /// callers can detect them without scanning the input. It is overwritten (cleared first), asynchronously.
    /// </summary>
    public DeviceTensorSpan<long>? NonFiniteCount { get; init; }
}
