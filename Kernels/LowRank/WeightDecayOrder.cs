namespace Kernels.LowRank;

/// <summary>
/// Where decoupled weight decay λ enters <see cref="GaLore.ApplyUpdate"/> relative to the back-projected step lr·α·P·N
/// (docs/lowrank.md §4.1). The two orders differ by lr·λ·lr·α·P·N, second order in lr, but they are different
/// optimizers and a port of either should reproduce its source.
/// </summary>
public enum WeightDecayOrder
{
    /// <summary>
    /// W ← (1 − lr·λ)·W − lr·α·P·N: the decay acts on the weights before the step, as in torch.optim.AdamW (which
    /// multiplies the parameter by 1 − lr·λ first) and Loshchilov and Hutter's decoupled weight decay (arXiv 1711.05101).
    /// The default.
    /// </summary>
    BeforeUpdate = 0,

    /// <summary>
    /// W ← (1 − lr·λ)·(W − lr·α·P·N): the step first, then the decay of the updated weights, as galore_torch.AdamW does
    /// (<c>p.add_(norm_grad, alpha=-step_size)</c>, then <c>p.add_(p, alpha=-lr·weight_decay)</c>). Choose this for
    /// GaLore's semantics.
    /// </summary>
    AfterUpdate = 1,
}
