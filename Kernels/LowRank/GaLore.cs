using Kernels.Tensors;

namespace Kernels.LowRank;

/// <summary>
/// GaLore (Zhao et al., arXiv 2403.03507) gradient projections on the f32 SIMT GEMM: compress an m×n gradient to its
/// r-dimensional subspace, run the optimizer on the small R, and bring the update back. The projector is P (m×r,
/// <see cref="ProjectionSide.Left"/>) or Q (r×n, <see cref="ProjectionSide.Right"/>); GaLore's "std" rule compresses
/// the smaller dimension (<see cref="SideFor"/>). Projectors come from <see cref="Subspace"/>.
/// All operations enqueue asynchronously on the gradient's device stream.
/// </summary>
public static class GaLore
{
    /// <summary>GaLore's "std" side for an m×n gradient: Right (Q, R = G·Qᵀ) when m ≥ n, else Left (P, R = Pᵀ·G).</summary>
    public static ProjectionSide SideFor(long rows, long cols) => rows >= cols ? ProjectionSide.Right : ProjectionSide.Left;

    /// <summary>
    /// R = Pᵀ·G (Left: P m×r, R r×n) or R = G·Qᵀ (Right: Q r×n, R m×r). The reduction over the long dimension is
    /// split across groups when the output is small, with an ordered (deterministic) reduction.
    /// </summary>
    /// <param name="gradient">G, m×n f32 (last dimension contiguous).</param>
    /// <param name="projector">P (m×r) or Q (r×n).</param>
    /// <param name="side">Which projector <paramref name="projector"/> is.</param>
    /// <param name="result">R: r×n (Left) or m×r (Right).</param>
    public static void Project(ReadOnlyDeviceTensorSpan<float> gradient, ReadOnlyDeviceTensorSpan<float> projector,
        ProjectionSide side, DeviceTensorSpan<float> result)
    {
        var device = gradient.Device ?? throw new ArgumentException("gradient is a default (empty) view.", nameof(gradient));
        LowRankChecks.Matrix(gradient, device, nameof(gradient));
        LowRankChecks.Matrix(projector, device, nameof(projector));
        LowRankChecks.Matrix(result, device, nameof(result));
        long m = gradient.Lengths[0], n = gradient.Lengths[1];
        long r = RankOf(projector, side, m, n);
        if (side == ProjectionSide.Left) LowRankChecks.Shape2(result.Lengths, r, n, nameof(result));
        else LowRankChecks.Shape2(result.Lengths, m, r, nameof(result));
        Require.Disjoint(Footprint.Of(result, nameof(result)), Footprint.Of(gradient, nameof(gradient)));
        Require.Disjoint(Footprint.Of(result, nameof(result)), Footprint.Of(projector, nameof(projector)));

        var g = MatrixRef.Of(gradient);
        var p = MatrixRef.Of(projector);
        var a = side == ProjectionSide.Left ? p.T : g;
        var b = side == ProjectionSide.Left ? g : p.T;
        var c = MatrixRef.Of(result);
        using var lease = LowRankWorkspace.Rent(device, SimtGemm.WorkspaceFor(device, c.Rows, c.Cols, a.Cols), "GaLore.Project split-K partials");
        SimtGemm.Multiply(device, a, b, c, 1f, 0f, lease.View);
    }

    /// <summary>ΔW = scale·P·N (Left: N r×n) or ΔW = scale·N·Q (Right: N m×r), written to <paramref name="update"/> (m×n).</summary>
    /// <param name="lowRankUpdate">N, the optimizer's update in the projected space (shaped like R).</param>
    /// <param name="projector">P (m×r) or Q (r×n).</param>
    /// <param name="side">Which projector <paramref name="projector"/> is.</param>
    /// <param name="scale">GaLore's scale α.</param>
    /// <param name="update">ΔW, m×n.</param>
    public static void BackProject(ReadOnlyDeviceTensorSpan<float> lowRankUpdate, ReadOnlyDeviceTensorSpan<float> projector,
        ProjectionSide side, float scale, DeviceTensorSpan<float> update)
    {
        var (a, b, c, device) = CheckBack(lowRankUpdate, projector, side, update, nameof(update));
        LowRankChecks.Finite(scale, nameof(scale));
        // K = r is short: never split, so no workspace, and nothing of size m×n besides the destination.
        SimtGemm.Multiply(device, a, b, c, scale, 0f, default, splitsOverride: 1);
    }

    /// <summary>
    /// The fused apply, in one pass over W: W ← (1 − lr·λ)·W − lr·scale·P·N (Left; N·Q for Right) with
    /// <see cref="WeightDecayOrder.BeforeUpdate"/> (torch.optim.AdamW, the default), or
    /// W ← (1 − lr·λ)·(W − lr·scale·P·N) with <see cref="WeightDecayOrder.AfterUpdate"/> (galore_torch.AdamW: choose
    /// it for GaLore's semantics). Each output tile of P·N is formed in registers and folded into W as it is stored, so
    /// the m×n back-projection never exists in memory: W is read once and written once.
    /// <para>
    /// galore_torch takes the step with the bias-corrected step size lr·√(1 − β₂ᵗ)/(1 − β₁ᵗ) but decays with the plain
    /// lr; pass the plain lr as <paramref name="learningRate"/> and fold the bias correction into
    /// <paramref name="scale"/> (α·√(1 − β₂ᵗ)/(1 − β₁ᵗ)) to reproduce it exactly.
    /// </para>
    /// </summary>
    /// <param name="lowRankUpdate">N (r×n for Left, m×r for Right).</param>
    /// <param name="projector">P (m×r) or Q (r×n).</param>
    /// <param name="side">Which projector <paramref name="projector"/> is.</param>
    /// <param name="learningRate">lr.</param>
    /// <param name="scale">GaLore's scale α.</param>
    /// <param name="weight">W, m×n, updated in place.</param>
    /// <param name="weightDecay">Decoupled weight decay λ (AdamW style); 0 by default.</param>
    /// <param name="weightDecayOrder">Whether λ decays W before or after the projected step (irrelevant when λ = 0).</param>
    public static void ApplyUpdate(ReadOnlyDeviceTensorSpan<float> lowRankUpdate, ReadOnlyDeviceTensorSpan<float> projector,
        ProjectionSide side, float learningRate, float scale, DeviceTensorSpan<float> weight, float weightDecay = 0f,
        WeightDecayOrder weightDecayOrder = WeightDecayOrder.BeforeUpdate)
    {
        var (a, b, c, device) = CheckBack(lowRankUpdate, projector, side, weight, nameof(weight));
        LowRankChecks.Finite(learningRate, nameof(learningRate));
        LowRankChecks.Finite(scale, nameof(scale));
        LowRankChecks.Finite(weightDecay, nameof(weightDecay));
        if (weightDecayOrder is not (WeightDecayOrder.BeforeUpdate or WeightDecayOrder.AfterUpdate))
            throw new ArgumentOutOfRangeException(nameof(weightDecayOrder), $"Unknown weight decay order {weightDecayOrder}.");
        // Both orders are W ← keep·W + step·(P·N); after the update the decay also shrinks the step by keep.
        double keep = 1.0 - (double)learningRate * weightDecay;
        double step = -(double)learningRate * scale * (weightDecayOrder == WeightDecayOrder.AfterUpdate ? keep : 1.0);
        SimtGemm.Multiply(device, a, b, c, (float)step, (float)keep, default, splitsOverride: 1);
    }

    private static (MatrixRef A, MatrixRef B, MatrixRef C, Runtime.ComputeDevice Device) CheckBack(
        ReadOnlyDeviceTensorSpan<float> lowRankUpdate, ReadOnlyDeviceTensorSpan<float> projector, ProjectionSide side,
        DeviceTensorSpan<float> destination, string destinationName)
    {
        // The inputs decide the device, so a destination elsewhere is the one named.
        var device = lowRankUpdate.Device ?? throw new ArgumentException("lowRankUpdate is a default (empty) view.", nameof(lowRankUpdate));
        LowRankChecks.Matrix(lowRankUpdate, device, nameof(lowRankUpdate));
        LowRankChecks.Matrix(projector, device, nameof(projector));
        LowRankChecks.Matrix(destination, device, destinationName);
        long m = destination.Lengths[0], n = destination.Lengths[1];
        // projector and lowRankUpdate agree on r and imply another m×n: the destination is the odd one out.
        var pl = projector.Lengths;
        var ul = lowRankUpdate.Lengths;
        var (impliedM, impliedN, agree) = side == ProjectionSide.Left ? (pl[0], ul[1], pl[1] == ul[0]) : (ul[0], pl[1], ul[1] == pl[0]);
        if (agree && (impliedM != m || impliedN != n))
            throw new ArgumentException(
                $"{destinationName} has lengths {TensorShape.Format(destination.Lengths)} but projector {TensorShape.Format(pl)} and " +
                $"lowRankUpdate {TensorShape.Format(ul)} give a {impliedM}×{impliedN} matrix.", destinationName);
        long r = RankOf(projector, side, m, n);
        if (side == ProjectionSide.Left) LowRankChecks.Shape2(lowRankUpdate.Lengths, r, n, nameof(lowRankUpdate));
        else LowRankChecks.Shape2(lowRankUpdate.Lengths, m, r, nameof(lowRankUpdate));
        Require.Disjoint(Footprint.Of(destination, destinationName), Footprint.Of(lowRankUpdate, nameof(lowRankUpdate)));
        Require.Disjoint(Footprint.Of(destination, destinationName), Footprint.Of(projector, nameof(projector)));
        var nn = MatrixRef.Of(lowRankUpdate);
        var p = MatrixRef.Of(projector);
        return side == ProjectionSide.Left
            ? (p, nn, MatrixRef.Of(destination), device)
            : (nn, p, MatrixRef.Of(destination), device);
    }

    /// <summary>The rank r of a projector for an m×n matrix, checking its shape against the side.</summary>
    internal static long RankOf(ReadOnlyDeviceTensorSpan<float> projector, ProjectionSide side, long m, long n, string name = "projector")
    {
        if (side is not (ProjectionSide.Left or ProjectionSide.Right))
            throw new ArgumentOutOfRangeException(nameof(side), $"Unknown projection side {side}.");
        long r = side == ProjectionSide.Left ? projector.Lengths[1] : projector.Lengths[0];
        long along = side == ProjectionSide.Left ? projector.Lengths[0] : projector.Lengths[1];
        long expected = side == ProjectionSide.Left ? m : n;
        if (along != expected)
            throw new ArgumentException(
                $"{name} has lengths {TensorShape.Format(projector.Lengths)}; a {side} {(name == "projector" ? "projector" : "basis")} of an {m}×{n} matrix must be " +
                (side == ProjectionSide.Left ? $"[{m}, r]" : $"[r, {n}]") + ".", name);
        if (r < 1 || r > Math.Min(m, n))
            throw new ArgumentOutOfRangeException(name, $"{name} rank {r} must be in [1, {Math.Min(m, n)}] for an {m}×{n} matrix.");
        return r;
    }
}
