using Kernels.Tensors;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Optimizers;

/// <summary>
/// CPU reference of <see cref="Optimizer8Bit.Step{TParam, TGrad}"/> over host spans and a host state: the same element
/// math and skip policy (<see cref="ElementStep"/>), the same block scale rule and the code books' host nearest-code
/// search, one block at a time. Its codes and scales are bit-compatible with the kernel's (on the CPU accelerator,
/// bit-identical; on a GPU, contracted multiply-adds can move a state by an ulp and, rarely, a code by one).
/// </summary>
public static class Optimizer8BitReference
{
    /// <summary>
    /// One step on host data: updates <paramref name="state"/> (in place) and <paramref name="parameters"/>;
    /// returns the number of skipped (non-finite) elements.
    /// </summary>
    public static int Step<TParam, TGrad>(ReadOnlySpan<TGrad> gradients, Optimizer8BitStateSnapshot state,
        OptimizerSettings settings, long step, Span<TParam> parameters, ulong? stochasticRoundingSeed = null)
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
        var k = StepScalars.From(settings, step);
        return state.Kind switch
        {
            OptimizerKind.Adam => Run<TParam, TGrad, AdamRule>(gradients, state, k, step, parameters, stochasticRoundingSeed),
            OptimizerKind.AdamW => Run<TParam, TGrad, AdamWRule>(gradients, state, k, step, parameters, stochasticRoundingSeed),
            OptimizerKind.Momentum => Run<TParam, TGrad, MomentumRule>(gradients, state, k, step, parameters, stochasticRoundingSeed),
            OptimizerKind.Lion => Run<TParam, TGrad, LionRule>(gradients, state, k, step, parameters, stochasticRoundingSeed),
            OptimizerKind.RMSprop => Run<TParam, TGrad, RMSpropRule>(gradients, state, k, step, parameters, stochasticRoundingSeed),
            _ => Run<TParam, TGrad, AdagradRule>(gradients, state, k, step, parameters, stochasticRoundingSeed),
        };
    }

    private static int Run<TParam, TGrad, TRule>(ReadOnlySpan<TGrad> gradients, Optimizer8BitStateSnapshot state,
        in StepScalars k, long step, Span<TParam> parameters, ulong? seed)
        where TParam : unmanaged where TGrad : unmanaged where TRule : struct, IUpdateRule
    {
        int states = state.StateCount;
        int skipped = 0;
        var s1 = new float[Math.Min(state.BlockSize, state.Length)];
        var s2 = new float[s1.Length];
        for (int b = 0; b < state.BlockCount; b++)
        {
            int start = b * state.BlockSize, end = Math.Min(state.Length, start + state.BlockSize);
            for (int i = start; i < end; i++)
            {
                float p = ElementTypes.ToFloat(parameters[i]);
                float g = ElementTypes.ToFloat(gradients[i]);
                float a = state.Dequantize(0, i);
                float c = states == 2 ? state.Dequantize(1, i) : 0f;
                if (!ElementStep.Run<TRule>(ref p, g, ref a, ref c, k)) skipped++;
                parameters[i] = Round<TParam>(p, seed, step, i);
                s1[i - start] = a;
                s2[i - start] = c;
            }
            Store(state, 0, start, end, s1);
            if (states == 2) Store(state, 1, start, end, s2);
        }
        return skipped;
    }

    /// <summary>Writes a block's new states: f32 as is, or the block scale and nearest codes.</summary>
    private static void Store(Optimizer8BitStateSnapshot state, int s, int start, int end, float[] staged)
    {
        if (!state.IsQuantized)
        {
            staged.AsSpan(0, end - start).CopyTo(state.Values![s].AsSpan(start));
            return;
        }
        float maxPositive = 0f, maxNegative = 0f;
        for (int i = 0; i < end - start; i++)
        {
            maxPositive = Math.Max(maxPositive, staged[i]);
            maxNegative = Math.Max(maxNegative, -staged[i]);
        }
        bool signed = state.Kind.IsSigned(s);
        float scale = BlockScale.Of(signed, maxPositive, maxNegative);
        float inverse = BlockScale.Inverse(scale);
        var book = Optimizer8BitState.BookFor(state.Kind, s);
        for (int i = 0; i < end - start; i++) state.Codes![s][start + i] = (byte)book.NearestIndex(staged[i] * inverse);
        state.Absmax![s][start / state.BlockSize] = scale;
    }

    /// <summary>The kernel's parameter write: nearest even, or stochastic with the same counter-based bits.</summary>
    internal static T Round<T>(float x, ulong? seed, long step, long index) where T : unmanaged
    {
        bool stochastic = seed.HasValue && typeof(T) != typeof(float);
        uint random = stochastic ? StochasticBits.Of(seed!.Value, step, index) : 0u;
        if (typeof(T) == typeof(float)) return (T)(object)x;
        if (typeof(T) == typeof(DeviceHalf)) return (T)(object)default(F16Parameter).Round(x, stochastic, random);
        return (T)(object)default(BF16Parameter).Round(x, stochastic, random);
    }
}
