namespace Kernels.Optimizers;

/// <summary>
/// The per-step scalars every element update needs, computed once on the host in double precision from the settings
/// and the step number (as PyTorch does with Python floats) and passed to the kernel by value: no host
/// synchronization, no per-element pow.
/// </summary>
internal struct StepScalars
{
    public float LearningRate;
    public float Beta1, OneMinusBeta1;
    public float Beta2, OneMinusBeta2;
    public float Epsilon;
    public float WeightDecay;
    /// <summary>Decoupled decay factor 1 − lr·wd.</summary>
    public float Decay;
    /// <summary>Adam's lr / (1 − β1^t).</summary>
    public float StepSize;
    /// <summary>Adam's √(1 − β2^t).</summary>
    public float BiasCorrection2Sqrt;
    /// <summary>bitsandbytes' gnorm_scale: multiplies every gradient (before weight decay); the clipping scale multiplies it on the device.</summary>
    public float GradientScale;
    /// <summary>1 on the first step (SGD momentum starts its buffer at g), else 0.</summary>
    public int FirstStep;

    public static StepScalars From(in OptimizerSettings s, long step, float gradientScale = 1f)
    {
        double bc1 = 1.0 - Math.Pow(s.Beta1, step);
        double bc2 = 1.0 - Math.Pow(s.Beta2, step);
        return new StepScalars
        {
            LearningRate = s.LearningRate,
            Beta1 = s.Beta1,
            OneMinusBeta1 = (float)(1.0 - s.Beta1),
            Beta2 = s.Beta2,
            OneMinusBeta2 = (float)(1.0 - s.Beta2),
            Epsilon = s.Epsilon,
            WeightDecay = s.WeightDecay,
            Decay = (float)(1.0 - (double)s.LearningRate * s.WeightDecay),
            // β1 = 1 makes m̂ undefined; torch divides by zero there too. Keep it finite: no step.
            StepSize = bc1 > 0 ? (float)(s.LearningRate / bc1) : 0f,
            BiasCorrection2Sqrt = bc2 > 0 ? (float)Math.Sqrt(bc2) : 1f,
            FirstStep = step == 1 ? 1 : 0,
            GradientScale = gradientScale,
        };
    }
}
