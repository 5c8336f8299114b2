namespace Kernels.Optimizers;

/// <summary>
/// The optimizers of the 8-bit family. Each follows PyTorch's update (torch.optim) unless stated; the states it keeps
/// and the code book each state is quantized with are listed per member. <see cref="OptimizerSettings"/> says which
/// hyper-parameter plays which role.
/// </summary>
public enum OptimizerKind
{
    /// <summary>
    /// torch.optim.Adam: m (signed map) and v (unsigned map); weight decay is L2 (added to the gradient before the
    /// moments); eps outside the square root on the bias-corrected scale: p −= lr·m̂/(√v̂ + eps).
    /// </summary>
    Adam,

    /// <summary>
    /// torch.optim.AdamW: as <see cref="Adam"/>, with decoupled weight decay p ←p·(1 − lr·wd) applied BEFORE the update
    /// (torch's order). bitsandbytes applies it after the update; the two differ by O(lr²·wd) per step.
    /// </summary>
    AdamW,

    /// <summary>
    /// torch.optim.SGD with momentum = <see cref="OptimizerSettings.Beta1"/>, dampening 0, no Nesterov: one signed
    /// state; buf = g at step 1, else β1·buf + g; p −= lr·buf; weight decay is L2.
    /// </summary>
    Momentum,

    /// <summary>
    /// Lion (Chen et al. 2023): one signed state; p ←p·(1 − lr·wd); p −= lr·sign(β1·m + (1−β1)·g);
    /// m ←β2·m + (1−β2)·g.
    /// </summary>
    Lion,

    /// <summary>
    /// torch.optim.RMSprop (not centered, no momentum) with alpha = <see cref="OptimizerSettings.Beta2"/>: one
    /// non-negative state on the unsigned map; v ←α·v + (1−α)·g²; p −= lr·g/(√v + eps); weight decay is L2 and,
    /// as in torch (unlike bitsandbytes), the decayed gradient is also the numerator.
    /// </summary>
    RMSprop,

    /// <summary>
    /// torch.optim.Adagrad (lr_decay 0, initial accumulator 0): one non-negative state on the unsigned map;
    /// s ←s + g²; p −= lr·g/(√s + eps); weight decay is L2.
    /// </summary>
    Adagrad,
}

/// <summary>Facts about each <see cref="OptimizerKind"/>.</summary>
public static class OptimizerKinds
{
    /// <summary>Number of per-element states: 2 for Adam/AdamW, 1 for the others.</summary>
    public static int StateCount(this OptimizerKind kind) => kind is OptimizerKind.Adam or OptimizerKind.AdamW ? 2 : 1;

    /// <summary>True when state <paramref name="index"/> can be negative (quantized with the signed dynamic map).</summary>
    public static bool IsSigned(this OptimizerKind kind, int index)
    {
        if ((uint)index >= (uint)kind.StateCount())
            throw new ArgumentOutOfRangeException(nameof(index), index, $"{kind} has {kind.StateCount()} state(s).");
        return kind switch
        {
            OptimizerKind.Adam or OptimizerKind.AdamW => index == 0,
            OptimizerKind.Momentum or OptimizerKind.Lion => true,
            _ => false,
        };
    }

    internal static void RequireDefined(OptimizerKind kind, string name)
    {
        if (!Enum.IsDefined(kind)) throw new ArgumentOutOfRangeException(name, kind, "Unknown optimizer kind.");
    }
}
