namespace Kernels.Optimizers;

/// <summary>
/// The f32-state optimizers exactly as torch.optim writes them (Adam, AdamW, SGD with momentum, RMSprop, Adagrad; Lion
/// as its paper), written independently of the kernels' rule structs: the oracle the 8-bit optimizers' error bounds
/// are measured against. No skip policy (torch has none): non-finite gradients propagate.
/// </summary>
public static class OptimizerF32Reference
{
    /// <summary>
    /// One step in f32: updates <paramref name="parameters"/>, <paramref name="state1"/> (m, momentum buffer, square
    /// average or sum) and, for Adam/AdamW, <paramref name="state2"/> (v) in place.
    /// </summary>
    public static void Step(OptimizerKind kind, OptimizerSettings settings, long step,
        ReadOnlySpan<float> gradients, Span<float> parameters, Span<float> state1, Span<float> state2)
    {
        int n = parameters.Length;
        if (gradients.Length != n || state1.Length != n || (kind.StateCount() == 2 && state2.Length != n))
            throw new ArgumentException("gradients and states must have the parameters' length.");
        float lr = settings.LearningRate, b1 = settings.Beta1, b2 = settings.Beta2, eps = settings.Epsilon, wd = settings.WeightDecay;
        double bc1 = 1 - Math.Pow(b1, step), bc2 = 1 - Math.Pow(b2, step);
        float stepSize = (float)(lr / bc1), bc2Sqrt = (float)Math.Sqrt(bc2);
        float decay = (float)(1 - (double)lr * wd);
        for (int i = 0; i < n; i++)
        {
            float g = gradients[i];
            switch (kind)
            {
                case OptimizerKind.Adam:
                case OptimizerKind.AdamW:
                {
                    if (kind == OptimizerKind.AdamW) parameters[i] *= decay;
                    else if (wd != 0) g += wd * parameters[i];
                    state1[i] = state1[i] * b1 + (1 - b1) * g;
                    state2[i] = state2[i] * b2 + (1 - b2) * g * g;
                    float denom = MathF.Sqrt(state2[i]) / bc2Sqrt + eps;
                    parameters[i] -= stepSize * (state1[i] / denom);
                    break;
                }
                case OptimizerKind.Momentum:
                    if (wd != 0) g += wd * parameters[i];
                    state1[i] = step == 1 ? g : state1[i] * b1 + g;
                    parameters[i] -= lr * state1[i];
                    break;
                case OptimizerKind.Lion:
                {
                    parameters[i] *= decay;
                    float c = b1 * state1[i] + (1 - b1) * g;
                    parameters[i] -= lr * MathF.Sign(c);
                    state1[i] = b2 * state1[i] + (1 - b2) * g;
                    break;
                }
                case OptimizerKind.RMSprop:
                    if (wd != 0) g += wd * parameters[i];
                    state1[i] = state1[i] * b2 + (1 - b2) * g * g;
                    parameters[i] -= lr * g / (MathF.Sqrt(state1[i]) + eps);
                    break;
                case OptimizerKind.Adagrad:
                    if (wd != 0) g += wd * parameters[i];
                    state1[i] += g * g;
                    parameters[i] -= lr * g / (MathF.Sqrt(state1[i]) + eps);
                    break;
                default:
                    throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown optimizer kind.");
            }
        }
    }
}
