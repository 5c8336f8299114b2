using ILGPU.Runtime;
using Kernels.Runtime;
using Kernels.Tensors;

namespace Kernels.LowRank;

/// <summary>
/// The top-r singular subspace of a gradient computed on the device, for GaLore projectors (docs/lowrank.md §4.3):
/// warm-started subspace iteration (two passes over G per iteration) and randomized SVD (Halko, Martinsson and Tropp,
/// arXiv 0909.4061, Alg. 4.4 + 5.1: 2q + 2 passes). Every pass over G is an f32 <see cref="SimtGemm"/> product; the
/// bases are orthonormalized with CholeskyQR2 (<see cref="CholeskyQr"/>), and only l×l matrices (Gram matrices,
/// Cholesky factors, the small SVD) go to the host, in f64.
/// <para>
/// These operations synchronize the stream once per orthonormalization (the host needs each small Gram matrix); their
/// other work is enqueued on the gradient's stream. A <see cref="ProjectionSide.Right"/> basis is computed as the left
/// subspace of Gᵀ by flipping operand layouts, never by transposing G.
/// </para>
/// <para>
/// <b>A zero gradient</b> has no dominant subspace (every r-dimensional subspace captures the same energy, zero), so
/// neither operation invents one: both throw <see cref="ArgumentException"/> naming <c>gradient</c> when its product
/// with the basis (or the random sketch) is exactly zero, before writing the basis, and likewise when the gradient
/// holds NaN or ∞. GaLore should keep the previous projector for such a step.
/// </para>
/// </summary>
public static class Subspace
{
    /// <summary>
    /// Warm-started subspace iteration: for each iteration Z = Gᵀ·P, Z ← orth(Z), Y = G·Z, P ← CholeskyQR2(Y), which
    /// contracts the error of span(P) by (σ_{r+1}/σ_r)² per iteration; one or two iterations per GaLore refresh suffice
    /// because the gradient's subspace drifts slowly. Orthonormalizing Z between the two products keeps Y's condition
    /// number at σ₁/σ_r instead of (σ₁/σ_r)², which CholeskyQR in f32 needs.
    /// </summary>
    /// <param name="gradient">G, m×n f32.</param>
    /// <param name="side">Left: basis is P (m×r, columns). Right: basis is Q (r×n, rows).</param>
    /// <param name="iterations">Iterations (≥ 1).</param>
    /// <param name="basis">The previous basis on entry (need not be exactly orthonormal, must have full rank r); the
    /// refined orthonormal basis on exit.</param>
    public static void WarmIterate(ReadOnlyDeviceTensorSpan<float> gradient, ProjectionSide side, int iterations,
        DeviceTensorSpan<float> basis)
    {
        var device = gradient.Device ?? throw new ArgumentException("gradient is a default (empty) view.", nameof(gradient));
        LowRankChecks.Matrix(gradient, device, nameof(gradient));
        LowRankChecks.Matrix(basis, device, nameof(basis));
        if (iterations < 1) throw new ArgumentOutOfRangeException(nameof(iterations), $"iterations must be at least 1, got {iterations}.");
        long m = gradient.Lengths[0], n = gradient.Lengths[1];
        int r = (int)GaLore.RankOf(basis.AsReadOnly(), side, m, n, nameof(basis));
        Require.Disjoint(Footprint.Of(basis, nameof(basis)), Footprint.Of(gradient, nameof(gradient)));

        var (g, p) = Orient(gradient, basis, side);
        var plan = new Plan(device, g.Rows, g.Cols, r);
        using var lease = LowRankWorkspace.Rent(device, plan.Floats, "Subspace.WarmIterate");
        var ws = plan.Carve(lease);
        for (int it = 0; it < iterations; it++)
        {
            SimtGemm.Multiply(device, g.T, p, ws.Z, 1f, 0f, ws.Partial);
            CholeskyQr.Orthonormalize(device, ws.Z, ws.Z2, ws.Z2, ws.Qr, singlePass: true);
            SimtGemm.Multiply(device, g, ws.Z2, ws.Y, 1f, 0f, ws.Partial);
            CholeskyQr.Orthonormalize(device, ws.Y, ws.Y2, p, ws.Qr);
        }
    }

    /// <summary>
    /// Randomized SVD with oversampling (Halko et al. Alg. 4.4 + 5.1, arranged so that the requested side comes from
    /// the last pass): l = r + <paramref name="oversampling"/> columns, Ω an l-column Gaussian sketch of the side
    /// <i>opposite</i> the basis (generated on the device from <paramref name="seed"/>), Z = orth(Gᵀ·Ω), then q power
    /// iterations Z ← orth(Gᵀ·orth(G·Z)); finally Y = G·Z = Q·R (CholeskyQR2). Y is the projected matrix B = G·Z of
    /// Alg. 5.1 after the final pass; the host takes the SVD of its l×l factor R = Ũ·Σ·Ṽᵀ (one-sided Jacobi, f64) and
    /// the device forms P = Q·Ũ[:, :r]. span(P) therefore lies in range((G·Gᵀ)^(q+1)·Ω): half a power iteration
    /// further than taking P from the span of the last orthonormalized sketch, for the same 2q + 2 passes over G. This
    /// is the side torch.svd_lowrank gets for V on a tall matrix (its B = Qᵀ·G after the final pass); its U, the
    /// basis of the sketch itself, is half an iteration behind. Cost 2mnl(2q + 2) flops.
    /// </summary>
    /// <param name="gradient">G, m×n f32.</param>
    /// <param name="side">Left: P (m×r). Right: Q (r×n).</param>
    /// <param name="powerIterations">q ≥ 0 (2 is a good default for gradients).</param>
    /// <param name="oversampling">p ≥ 0 extra columns (Halko: 5–10; 8 here by convention); l is capped at min(m, n).</param>
    /// <param name="seed">Seed of Ω.</param>
    /// <param name="basis">Destination: the top-r singular vectors (columns of P or rows of Q).</param>
    /// <param name="singularValues">Destination (host): the top-r singular values of G·Z (estimates of G's from
    /// below), descending; length ≥ r.</param>
    public static void RandomizedSvd(ReadOnlyDeviceTensorSpan<float> gradient, ProjectionSide side, int powerIterations,
        int oversampling, ulong seed, DeviceTensorSpan<float> basis, Span<float> singularValues)
    {
        var device = gradient.Device ?? throw new ArgumentException("gradient is a default (empty) view.", nameof(gradient));
        LowRankChecks.Matrix(gradient, device, nameof(gradient));
        LowRankChecks.Matrix(basis, device, nameof(basis));
        if (powerIterations < 0 || powerIterations > 64)
            throw new ArgumentOutOfRangeException(nameof(powerIterations), $"powerIterations must be in [0, 64], got {powerIterations}.");
        if (oversampling < 0)
            throw new ArgumentOutOfRangeException(nameof(oversampling), $"oversampling must be non-negative, got {oversampling}.");
        long m = gradient.Lengths[0], n = gradient.Lengths[1];
        int r = (int)GaLore.RankOf(basis.AsReadOnly(), side, m, n, nameof(basis));
        if (singularValues.Length < r)
            throw new ArgumentException($"singularValues has {singularValues.Length} elements but rank {r} needs at least {r}.", nameof(singularValues));
        Require.Disjoint(Footprint.Of(basis, nameof(basis)), Footprint.Of(gradient, nameof(gradient)));

        var (g, p) = Orient(gradient, basis, side);
        int l = (int)Math.Min(r + (long)oversampling, Math.Min(m, n));
        var plan = new Plan(device, g.Rows, g.Cols, l);
        using var lease = LowRankWorkspace.Rent(device, plan.Floats, "Subspace.RandomizedSvd");
        var ws = plan.Carve(lease);

        // Ω sketches the rows of G' (the basis side), so the first product is Gᵀ·Ω and the last one G·Z.
        GaussianSketch.Fill(device, ws.Y2.View, (long)g.Rows * l, seed);
        SimtGemm.Multiply(device, g.T, ws.Y2, ws.Z, 1f, 0f, ws.Partial);
        CholeskyQr.Orthonormalize(device, ws.Z, ws.Z2, ws.Z3, ws.Qr);
        for (int it = 0; it < powerIterations; it++)
        {
            SimtGemm.Multiply(device, g, ws.Z3, ws.Y, 1f, 0f, ws.Partial);
            CholeskyQr.Orthonormalize(device, ws.Y, ws.Y2, ws.Y2, ws.Qr, singlePass: true);
            SimtGemm.Multiply(device, g.T, ws.Y2, ws.Z, 1f, 0f, ws.Partial);
            CholeskyQr.Orthonormalize(device, ws.Z, ws.Z2, ws.Z3, ws.Qr);
        }
        SimtGemm.Multiply(device, g, ws.Z3, ws.Y, 1f, 0f, ws.Partial);
        var ry = CholeskyQr.Orthonormalize(device, ws.Y, ws.Y2, ws.Q, ws.Qr);

        // B = G·Z = Q·R with Z orthonormal: the SVD of the l×l matrix R gives B's singular values and left vectors.
        var (u, sigma, _) = SmallDense.Svd(ry, l, l);
        var ur = new float[l * r];
        for (int i = 0; i < l; i++)
            for (int j = 0; j < r; j++) ur[i * r + j] = (float)u[i * l + j];
        for (int j = 0; j < r; j++) singularValues[j] = (float)sigma[j];
        ws.Qr.Small.SubView(0, (long)l * r).CopyFromCPU(device.Stream, ur);
        SimtGemm.Multiply(device, ws.Q, MatrixRef.Dense(ws.Qr.Small, l, r), p, 1f, 0f, default, splitsOverride: 1);
    }

    /// <summary>Work as a left-subspace problem on G' (m'×n') with basis P' (m'×r).</summary>
    private static (MatrixRef G, MatrixRef P) Orient(ReadOnlyDeviceTensorSpan<float> gradient, DeviceTensorSpan<float> basis, ProjectionSide side)
    {
        var g = MatrixRef.Of(gradient);
        var p = MatrixRef.Of(basis);
        return side == ProjectionSide.Left ? (g, p) : (g.T, p.T);
    }

    /// <summary>The workspace of one call: tall buffers for l columns plus CholeskyQR scratch and split-K partials.</summary>
    private readonly struct Plan(ComputeDevice device, int rows, int cols, int l)
    {
        private long Partial => Math.Max(SimtGemm.WorkspaceFor(device, rows, l, cols), SimtGemm.WorkspaceFor(device, cols, l, rows));

        private long QrFloats => Math.Max(CholeskyQr.ScratchFloats(device, rows, l), CholeskyQr.ScratchFloats(device, cols, l));

        public long Floats => 3L * rows * l + 3L * cols * l + Partial + QrFloats;

        public Buffers Carve(ScratchLease<float> lease)
        {
            long at = 0;
            int width = l;
            var y = Tall(lease, ref at, rows, width); var y2 = Tall(lease, ref at, rows, width); var q = Tall(lease, ref at, rows, width);
            var z = Tall(lease, ref at, cols, width); var z2 = Tall(lease, ref at, cols, width); var z3 = Tall(lease, ref at, cols, width);
            var partial = lease.Slice(at, Partial); at += Partial;
            var qr = CholeskyQr.Carve(lease, ref at, device, Math.Max(rows, cols), l);
            return new Buffers(y, y2, q, z, z2, z3, partial, qr);
        }

        private static MatrixRef Tall(ScratchLease<float> lease, ref long at, int length, int width)
        {
            var v = lease.Slice(at, (long)length * width);
            at += (long)length * width;
            return MatrixRef.Dense(v, length, width);
        }
    }

    private readonly record struct Buffers(MatrixRef Y, MatrixRef Y2, MatrixRef Q, MatrixRef Z, MatrixRef Z2, MatrixRef Z3,
        ILGPU.ArrayView<float> Partial, CholeskyQr.Scratch Qr);
}
