namespace Kernels.Optimizers;

/// <summary>
/// One element's step on dequantized (or f32) states: the rule, then the skip policy, for every step kernel. The CPU
/// reference (<see cref="Optimizer8BitReference"/>) writes the same policy out on its own, so a bug here fails its tests.
/// </summary>
internal static class ElementStep
{
    /// <summary>Applies <typeparamref name="TRule"/>; returns false (and changes nothing) when the update is not finite.</summary>
    public static bool Run<TRule>(ref float p, float g, ref float s1, ref float s2, in StepScalars k)
        where TRule : struct, IUpdateRule
    {
        var u = default(TRule).Apply(p, g, s1, s2, k);
        if (!UpdateGuard.Accept(u)) return false;
        p = u.P;
        s1 = u.S1;
        s2 = u.S2;
        return true;
    }
}
