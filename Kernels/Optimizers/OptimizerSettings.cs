namespace Kernels.Optimizers;

/// <summary>
/// Hyper-parameters of one optimizer step, passed per call (they may change every step, e.g. a learning-rate
/// schedule, without any host synchronization). Roles by <see cref="OptimizerKind"/>: Adam/AdamW use all five;
/// Momentum uses <see cref="Beta1"/> as the momentum; Lion uses <see cref="Beta1"/> (update interpolation) and
/// <see cref="Beta2"/> (momentum decay); RMSprop uses <see cref="Beta2"/> as torch's alpha; Adagrad uses neither beta.
/// </summary>
/// <param name="LearningRate">Step size lr (finite, ≥ 0).</param>
/// <param name="Beta1">First-moment / momentum coefficient, in [0, 1].</param>
/// <param name="Beta2">Second-moment / smoothing coefficient, in [0, 1].</param>
/// <param name="Epsilon">Added to the square root of the (bias-corrected) second moment (finite, ≥ 0).</param>
/// <param name="WeightDecay">Weight decay (finite, ≥ 0): L2 for Adam, Momentum, RMSprop, Adagrad; decoupled for AdamW and Lion.</param>
public readonly record struct OptimizerSettings(
    float LearningRate, float Beta1 = 0.9f, float Beta2 = 0.999f, float Epsilon = 1e-8f, float WeightDecay = 0f)
{
    /// <summary>PyTorch's defaults for <paramref name="kind"/> (Lion: the paper's β = (0.9, 0.99); Adagrad: eps 1e-10; RMSprop: alpha 0.99; AdamW: wd 0.01).</summary>
    public static OptimizerSettings Defaults(OptimizerKind kind, float learningRate) => kind switch
    {
        OptimizerKind.AdamW => new(learningRate, WeightDecay: 0.01f),
        OptimizerKind.Lion => new(learningRate, 0.9f, 0.99f, 0f),
        OptimizerKind.RMSprop => new(learningRate, 0f, 0.99f, 1e-8f),
        OptimizerKind.Adagrad => new(learningRate, 0f, 0f, 1e-10f),
        _ => new(learningRate),
    };

    internal void Validate(string name)
    {
        static bool Finite(float x) => float.IsFinite(x);
        if (!Finite(LearningRate) || LearningRate < 0)
            throw new ArgumentOutOfRangeException(name, LearningRate, "LearningRate must be finite and ≥ 0.");
        if (!(Beta1 >= 0 && Beta1 <= 1)) throw new ArgumentOutOfRangeException(name, Beta1, "Beta1 must lie in [0, 1].");
        if (!(Beta2 >= 0 && Beta2 <= 1)) throw new ArgumentOutOfRangeException(name, Beta2, "Beta2 must lie in [0, 1].");
        if (!Finite(Epsilon) || Epsilon < 0) throw new ArgumentOutOfRangeException(name, Epsilon, "Epsilon must be finite and ≥ 0.");
        if (!Finite(WeightDecay) || WeightDecay < 0)
            throw new ArgumentOutOfRangeException(name, WeightDecay, "WeightDecay must be finite and ≥ 0.");
    }
}
