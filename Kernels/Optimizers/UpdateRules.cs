using ILGPU;

namespace Kernels.Optimizers;

/// <summary>An element's parameter and states after one update (f32).</summary>
internal struct ElementUpdate
{
    public float P, S1, S2;

    public ElementUpdate(float p, float s1, float s2)
    {
        P = p;
        S1 = s1;
        S2 = s2;
    }
}

/// <summary>
/// One optimizer's per-element math in f32 for the kernels (generic over the rule struct, so ILGPU specializes it
/// away). <see cref="Optimizer8BitReference"/> writes each update out independently from its definition in the same
/// f32 operation order, which is why the CPU-accelerator kernel and the reference agree bit for bit.
/// </summary>
internal interface IUpdateRule
{
    /// <summary>Per-element states used (1 or 2).</summary>
    int StateCount { get; }

    /// <summary>The update of one element from its parameter, gradient and dequantized states.</summary>
    ElementUpdate Apply(float p, float g, float s1, float s2, in StepScalars k);
}

/// <summary>The non-finite guard every kernel applies after the rule.</summary>
internal static class UpdateGuard
{
    /// <summary>True for a finite f32 (bit test: works in kernels and on the host).</summary>
    public static bool IsFinite(float x) => (Interop.FloatAsInt(x) & 0x7F800000u) != 0x7F800000u;

    /// <summary>
    /// The skip policy: an update whose parameter or any state is not finite (NaN/Inf gradient, g² overflow, a
    /// non-finite parameter under L2 decay) is dropped — parameter and states keep their old values — so no state
    /// ever becomes NaN/Inf and one bad element cannot poison its block's absmax.
    /// </summary>
    public static bool Accept(in ElementUpdate u) => IsFinite(u.P) & IsFinite(u.S1) & IsFinite(u.S2);
}

internal static class RuleMath
{
    /// <summary>g + wd·p, leaving g untouched when wd = 0 (so a non-finite p does not poison an undecayed step).</summary>
    public static float L2(float g, float p, in StepScalars k) => k.WeightDecay != 0f ? g + k.WeightDecay * p : g;

    public static float Sign(float x) => x > 0f ? 1f : x < 0f ? -1f : 0f;
}

/// <summary>Adam with L2 weight decay (torch.optim.Adam).</summary>
internal readonly struct AdamRule : IUpdateRule
{
    public int StateCount => 2;

    public ElementUpdate Apply(float p, float g, float m, float v, in StepScalars k)
    {
        float gg = RuleMath.L2(g, p, k);
        m = k.Beta1 * m + k.OneMinusBeta1 * gg;
        v = k.Beta2 * v + k.OneMinusBeta2 * (gg * gg);
        float denom = MathF.Sqrt(v) / k.BiasCorrection2Sqrt + k.Epsilon;
        return new ElementUpdate(p - k.StepSize * m / denom, m, v);
    }
}

/// <summary>AdamW (torch.optim.AdamW): decoupled decay before the Adam update.</summary>
internal readonly struct AdamWRule : IUpdateRule
{
    public int StateCount => 2;

    public ElementUpdate Apply(float p, float g, float m, float v, in StepScalars k)
    {
        p *= k.Decay;
        m = k.Beta1 * m + k.OneMinusBeta1 * g;
        v = k.Beta2 * v + k.OneMinusBeta2 * (g * g);
        float denom = MathF.Sqrt(v) / k.BiasCorrection2Sqrt + k.Epsilon;
        return new ElementUpdate(p - k.StepSize * m / denom, m, v);
    }
}

/// <summary>SGD with momentum (torch.optim.SGD, dampening 0, no Nesterov).</summary>
internal readonly struct MomentumRule : IUpdateRule
{
    public int StateCount => 1;

    public ElementUpdate Apply(float p, float g, float buf, float unused, in StepScalars k)
    {
        float gg = RuleMath.L2(g, p, k);
        buf = k.FirstStep != 0 ? gg : k.Beta1 * buf + gg;
        return new ElementUpdate(p - k.LearningRate * buf, buf, 0f);
    }
}

/// <summary>Lion: decoupled decay, sign of the interpolated momentum, then the momentum update.</summary>
internal readonly struct LionRule : IUpdateRule
{
    public int StateCount => 1;

    public ElementUpdate Apply(float p, float g, float m, float unused, in StepScalars k)
    {
        p *= k.Decay;
        float c = k.Beta1 * m + k.OneMinusBeta1 * g;
        p -= k.LearningRate * RuleMath.Sign(c);
        m = k.Beta2 * m + k.OneMinusBeta2 * g;
        return new ElementUpdate(p, m, 0f);
    }
}

/// <summary>RMSprop (torch.optim.RMSprop, alpha = β2, not centered).</summary>
internal readonly struct RMSpropRule : IUpdateRule
{
    public int StateCount => 1;

    public ElementUpdate Apply(float p, float g, float v, float unused, in StepScalars k)
    {
        float gg = RuleMath.L2(g, p, k);
        v = k.Beta2 * v + k.OneMinusBeta2 * (gg * gg);
        return new ElementUpdate(p - k.LearningRate * gg / (MathF.Sqrt(v) + k.Epsilon), v, 0f);
    }
}

/// <summary>Adagrad (torch.optim.Adagrad, lr_decay 0).</summary>
internal readonly struct AdagradRule : IUpdateRule
{
    public int StateCount => 1;

    public ElementUpdate Apply(float p, float g, float s, float unused, in StepScalars k)
    {
        float gg = RuleMath.L2(g, p, k);
        s += gg * gg;
        return new ElementUpdate(p - k.LearningRate * gg / (MathF.Sqrt(s) + k.Epsilon), s, 0f);
    }
}

internal static class UpdateRules
{
    /// <summary>The rule struct type of a kind (for building kernel specializations).</summary>
    public static Type TypeOf(OptimizerKind kind) => kind switch
    {
        OptimizerKind.Adam => typeof(AdamRule),
        OptimizerKind.AdamW => typeof(AdamWRule),
        OptimizerKind.Momentum => typeof(MomentumRule),
        OptimizerKind.Lion => typeof(LionRule),
        OptimizerKind.RMSprop => typeof(RMSpropRule),
        OptimizerKind.Adagrad => typeof(AdagradRule),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown optimizer kind."),
    };
}
