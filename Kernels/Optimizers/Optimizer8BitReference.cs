using System.Runtime.CompilerServices;
using Kernels.Quantization;
using Kernels.Runtime;
using Kernels.Tensors;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Optimizers;

/// <summary>
/// CPU reference of <see cref="Optimizer8Bit.Step{TParam, TGrad}"/> over host spans and a host state, written from the
/// definitions and sharing no arithmetic with the kernel path (not its rule structs, step scalars, skip guard, block
/// scale, code search or parameter rounding). Per block of the state: dequantize each state as code value · block
/// scale; run the optimizer's update (<see cref="OptimizerKind"/>) in f32; skip an element whose update is not finite;
/// the new block scale is the block's largest magnitude (divided by |signed code 0| when that extreme is negative on
/// the signed map); requantize to the nearest code (by f32 midpoints, as bitsandbytes). What it shares with the kernels are fixed facts: the
/// code-book tables (checked elsewhere by their SHA-256) and the Philox generator (checked against its published
/// answers) that stochastic rounding draws from.
/// </summary>
/// <remarks>
/// Bit-exactness with the kernel (on the CPU accelerator) needs the same f32 operations in the same order, so the
/// order is written out here, each time as the kernel's documented contract rather than by calling its code:
/// hyper-parameter scalars are computed in double and rounded to f32 once (as torch does with Python floats);
/// every product and sum is a separate f32 rounding (no fused multiply-add: .NET and the ILGPU CPU accelerator never
/// contract, and the PTX path differs only where ptxas contracts — see <c>CudaMatchesTheReferenceWithinOneCode</c>);
/// the step is <c>(stepSize · m) / denom</c> (torch's <c>addcdiv</c> divides first; the kernel's order is one ulp
/// apart at most); a state is normalized by multiplying with the f32 reciprocal of the scale, <c>s · (1/scale)</c>,
/// not by dividing (bitsandbytes' order, one ulp apart from <c>s / scale</c>).
/// </remarks>
public static class Optimizer8BitReference
{
    /// <summary>
    /// One step on host data: updates <paramref name="state"/> (in place) and <paramref name="parameters"/>;
    /// returns the number of skipped (non-finite) elements.
    /// </summary>
    /// <param name="gradients">Gradients, TParam or float.</param>
    /// <param name="state">The host state (a snapshot), updated in place.</param>
    /// <param name="settings">Hyper-parameters.</param>
    /// <param name="step">1-based step.</param>
    /// <param name="parameters">Parameters, updated in place.</param>
    /// <param name="stochasticRoundingSeed">As <see cref="OptimizerStepOptions.StochasticRoundingSeed"/>.</param>
    /// <param name="gradientScale">Every gradient is multiplied by it in f32 first: <see cref="OptimizerStepOptions.GradientScale"/>
    /// times the clipping scale (<see cref="PercentileClippingReference"/>), that product rounded to f32 once.</param>
    /// <param name="elementOffset">Index of element 0 in the whole parameter (a shard's start), as <see cref="OptimizerStepOptions.ElementOffset"/>.</param>
    public static int Step<TParam, TGrad>(ReadOnlySpan<TGrad> gradients, Optimizer8BitStateSnapshot state,
        OptimizerSettings settings, long step, Span<TParam> parameters, ulong? stochasticRoundingSeed = null, float gradientScale = 1f,
        long elementOffset = 0)
        where TParam : unmanaged where TGrad : unmanaged
    {
        ArgumentNullException.ThrowIfNull(state);
        Require.Supported<TParam>(nameof(parameters));
        if (typeof(TGrad) != typeof(TParam) && typeof(TGrad) != typeof(float))
            throw new ArgumentException($"gradients must be {typeof(TParam).Name} or float, not {typeof(TGrad).Name}.", nameof(gradients));
        Require.Length(parameters.Length, state.Length, nameof(parameters), $"the {state.Kind} state");
        Require.Length(gradients.Length, state.Length, nameof(gradients), $"the {state.Kind} state");
        settings.Validate(nameof(settings));
        if (step < 1) throw new ArgumentOutOfRangeException(nameof(step), step, "Steps are counted from 1.");

        var h = Hyper.Of(settings, step);
        var kind = state.Kind;
        int states = kind.StateCount();
        int skipped = 0;
        var staged = new float[2][];
        for (int s = 0; s < states; s++) staged[s] = new float[Math.Min(state.BlockSize, state.Length)];
        for (int start = 0; start < state.Length; start += state.BlockSize)
        {
            int end = Math.Min(state.Length, start + state.BlockSize);
            for (int i = start; i < end; i++)
            {
                float p = Widen(parameters[i]);
                float g = Widen(gradients[i]) * gradientScale;
                float s1 = Dequantized(state, 0, i);
                float s2 = states == 2 ? Dequantized(state, 1, i) : 0f;
                if (Update(kind, h, ref p, g, ref s1, ref s2)) parameters[i] = Narrow<TParam>(p, stochasticRoundingSeed, step, elementOffset + i);
                else skipped++; // parameter storage untouched, states keep their dequantized values
                staged[0][i - start] = s1;
                if (states == 2) staged[1][i - start] = s2;
            }
            for (int s = 0; s < states; s++) Store(state, s, start, end, staged[s]);
        }
        return skipped;
    }

    /// <summary>The per-step scalars, each computed in double and rounded to f32 once.</summary>
    private readonly struct Hyper
    {
        public readonly float Lr, B1, OneMinusB1, B2, OneMinusB2, Eps, Wd, Decay, AdamStepSize, Bc2Sqrt;
        public readonly bool First;

        private Hyper(in OptimizerSettings s, long t)
        {
            Lr = s.LearningRate;
            B1 = s.Beta1;
            B2 = s.Beta2;
            OneMinusB1 = (float)(1d - s.Beta1);
            OneMinusB2 = (float)(1d - s.Beta2);
            Eps = s.Epsilon;
            Wd = s.WeightDecay;
            Decay = (float)(1d - (double)s.LearningRate * s.WeightDecay);
            double c1 = 1d - Math.Pow(s.Beta1, t), c2 = 1d - Math.Pow(s.Beta2, t);
            // β1 = 1 leaves m̂ undefined (torch divides by zero): no step. β2 = 1: no second-moment correction.
            AdamStepSize = c1 > 0d ? (float)(s.LearningRate / c1) : 0f;
            Bc2Sqrt = c2 > 0d ? (float)Math.Sqrt(c2) : 1f;
            First = t == 1;
        }

        public static Hyper Of(in OptimizerSettings s, long t) => new(s, t);
    }

    /// <summary>
    /// One element's update from the definitions in <see cref="OptimizerKind"/>. Returns false (and leaves
    /// p, s1, s2 as they were) when the new parameter or a new state is not finite.
    /// </summary>
    private static bool Update(OptimizerKind kind, in Hyper h, ref float p, float g, ref float s1, ref float s2)
    {
        float np = p, n1 = s1, n2 = s2;
        // L2 decay adds wd·p to the gradient, and only when wd ≠ 0 (0·Inf would poison an undecayed step).
        float l2 = h.Wd != 0f ? g + h.Wd * p : g;
        switch (kind)
        {
            case OptimizerKind.Adam:
            case OptimizerKind.AdamW:
            {
                float gg = kind == OptimizerKind.Adam ? l2 : g;
                if (kind == OptimizerKind.AdamW) np = p * h.Decay;
                n1 = h.B1 * s1 + h.OneMinusB1 * gg;
                n2 = h.B2 * s2 + h.OneMinusB2 * (gg * gg);
                float denom = MathF.Sqrt(n2) / h.Bc2Sqrt + h.Eps;
                np -= h.AdamStepSize * n1 / denom;
                break;
            }
            case OptimizerKind.Momentum:
                n1 = h.First ? l2 : h.B1 * s1 + l2;
                np = p - h.Lr * n1;
                break;
            case OptimizerKind.Lion:
            {
                np = p * h.Decay;
                float c = h.B1 * s1 + h.OneMinusB1 * g;
                np -= h.Lr * (c > 0f ? 1f : c < 0f ? -1f : 0f);
                n1 = h.B2 * s1 + h.OneMinusB2 * g;
                break;
            }
            case OptimizerKind.RMSprop:
                n1 = h.B2 * s1 + h.OneMinusB2 * (l2 * l2);
                np = p - h.Lr * l2 / (MathF.Sqrt(n1) + h.Eps);
                break;
            case OptimizerKind.Adagrad:
                n1 = s1 + l2 * l2;
                np = p - h.Lr * l2 / (MathF.Sqrt(n1) + h.Eps);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown optimizer kind.");
        }
        if (!float.IsFinite(np) || !float.IsFinite(n1) || !float.IsFinite(n2)) return false;
        p = np;
        s1 = n1;
        s2 = n2;
        return true;
    }

    private static CodeBook Book(OptimizerKind kind, int s) => kind.IsSigned(s) ? CodeBook.DynamicSigned : CodeBook.DynamicUnsigned;

    /// <summary>code value · block scale in f32, or the f32 state.</summary>
    private static float Dequantized(Optimizer8BitStateSnapshot state, int s, int i) =>
        state.IsQuantized ? Book(state.Kind, s).Values[state.Codes![s][i]] * state.Absmax![s][i / state.BlockSize] : state.Values![s][i];

    /// <summary>Writes a block's new states: f32 as is, or the new block scale and each state's nearest code.</summary>
    private static void Store(Optimizer8BitStateSnapshot state, int s, int start, int end, float[] staged)
    {
        if (!state.IsQuantized)
        {
            staged.AsSpan(0, end - start).CopyTo(state.Values![s].AsSpan(start));
            return;
        }
        var values = Book(state.Kind, s).Values;
        float largest = 0f;
        bool negativeExtreme = false;
        for (int i = 0; i < end - start; i++)
        {
            float a = MathF.Abs(staged[i]);
            // A strictly larger magnitude takes over; at a tie a positive state wins (+1.0 is a code, −1.0 is not).
            if (a > largest || (a == largest && staged[i] > 0f))
            {
                largest = a;
                negativeExtreme = staged[i] < 0f;
            }
        }
        // The signed map's most negative code is values[0] = −0.99296874 (there is no −1.0): a negative extreme is
        // scaled so that it lands on that code exactly; the unsigned map and a positive extreme use the magnitude.
        float scale = state.Kind.IsSigned(s) && negativeExtreme ? largest / -values[0] : largest;
        float reciprocal = scale > 0f ? 1f / scale : 0f;
        for (int i = 0; i < end - start; i++) state.Codes![s][start + i] = Nearest(values, staged[i] * reciprocal);
        state.Absmax![s][start / state.BlockSize] = scale;
    }

    /// <summary>
    /// The nearest code to <paramref name="x"/> as bitsandbytes decides it: the number of f32 midpoints
    /// <c>(values[c] + values[c + 1]) · 0.5f</c> strictly less than x, by a scan of all 255 (the maps ascend with the
    /// code). The midpoint is rounded to f32 as bitsandbytes' <c>quantize_2D</c> and <c>torch.bucketize</c> compute it,
    /// so a state within half an ulp of a true midpoint goes where theirs goes, not where an exact distance would send
    /// it; exactly on a midpoint it takes the lower code.
    /// </summary>
    private static byte Nearest(ReadOnlySpan<float> values, float x)
    {
        int below = 0;
        for (int c = 0; c + 1 < values.Length; c++)
            if ((values[c] + values[c + 1]) * 0.5f < x) below++;
        return (byte)below;
    }

    private static float Widen<T>(T value) where T : unmanaged
    {
        if (typeof(T) == typeof(float)) return Unsafe.As<T, float>(ref value);
        if (typeof(T) == typeof(DeviceHalf)) return (float)BitConverter.UInt16BitsToHalf(Unsafe.As<T, ushort>(ref value));
        return BitConverter.UInt32BitsToSingle((uint)Unsafe.As<T, ushort>(ref value) << 16); // bf16: the top half of f32
    }

    /// <summary>
    /// The parameter write: f32 as is; f16/bf16 to nearest even, or stochastically — up to the next magnitude with
    /// probability (distance from the lower neighbour) / (gap), with the random word (index mod 4) of Philox block
    /// (seed; counter index / 4, step).
    /// </summary>
    private static T Narrow<T>(float x, ulong? seed, long step, long index) where T : unmanaged
    {
        if (typeof(T) == typeof(float)) return Unsafe.As<float, T>(ref x);
        bool stochastic = seed.HasValue;
        uint random = 0;
        if (stochastic)
        {
            var block = Philox.Generate(seed!.Value, (ulong)step, (ulong)index >> 2);
            random = (index & 3) switch { 0 => block.X, 1 => block.Y, 2 => block.Z, _ => block.W };
        }
        ushort bits = typeof(T) == typeof(DeviceHalf) ? F16(x, stochastic, random) : Bf16(x, stochastic, random);
        return Unsafe.As<ushort, T>(ref bits);
    }

    private static ushort Bf16(float x, bool stochastic, uint random)
    {
        uint u = BitConverter.SingleToUInt32Bits(x);
        uint truncated = u >> 16, dropped = u & 0xFFFFu;
        if (stochastic) return (ushort)(dropped + (random & 0xFFFFu) >= 0x10000u ? truncated + 1 : truncated);
        // Nearest even: more than half the gap rounds up, exactly half rounds to the even neighbour.
        bool up = dropped > 0x8000u || (dropped == 0x8000u && (truncated & 1u) == 1u);
        return (ushort)(up ? truncated + 1 : truncated);
    }

    private static ushort F16(float x, bool stochastic, uint random)
    {
        var nearest = (Half)x; // .NET's conversion: round to nearest even
        if (!stochastic || Half.IsInfinity(nearest)) return BitConverter.HalfToUInt16Bits(nearest);
        float a = MathF.Abs(x);
        var magnitude = Half.Abs(nearest);
        if ((float)magnitude == a) return BitConverter.HalfToUInt16Bits(nearest);
        Half lo = (float)magnitude < a ? magnitude : Half.BitDecrement(magnitude);
        Half hi = Half.BitIncrement(lo);
        float up = (a - (float)lo) / ((float)hi - (float)lo);
        float u = (random >> 8) * (1f / 16777216f);
        ushort chosen = BitConverter.HalfToUInt16Bits(u < up ? hi : lo);
        return (ushort)(chosen | (x < 0f ? 0x8000 : 0));
    }
}
