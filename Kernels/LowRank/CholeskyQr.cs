using ILGPU;
using ILGPU.Runtime;
using Kernels.Runtime;

namespace Kernels.LowRank;

/// <summary>
/// CholeskyQR2 (Fukaya et al.): Y = Q·R with C = YᵀY on the device (split-K, ordered reduction), R = chol(C) on the
/// host in f64, Q = Y·R⁻¹ on the device; repeated until the input of a pass is already orthonormal to 0.1, which makes
/// that pass's output orthonormal to f32 precision (two passes in the usual case, κ(Y) ≲ 10³). When the first Gram
/// matrix is numerically indefinite (κ(Y) beyond ~u^-1/2 in f32) the pass uses the shifted Cholesky of shifted
/// CholeskyQR3, s = 11·(m·l + l(l+1))·u·tr(C), and the following passes finish the job.
/// All products are <see cref="SimtGemm"/>; only the l×l matrices cross to the host.
/// </summary>
internal static class CholeskyQr
{
    private const double UnitRoundoff = 1.0 / (1 << 24);

    /// <summary>Device buffers one orthonormalization uses (all carved from a workspace lease).</summary>
    internal readonly record struct Scratch(ArrayView<float> Gram, ArrayView<float> Small, ArrayView<float> Partial);

    /// <summary>Floats of <see cref="Scratch"/> for l columns of length up to <paramref name="rows"/>.</summary>
    internal static long ScratchFloats(ComputeDevice device, int rows, int l) =>
        2L * l * l + SimtGemm.WorkspaceFor(device, l, l, rows);

    internal static Scratch Carve(ScratchLease<float> lease, ref long offset, ComputeDevice device, int rows, int l)
    {
        var gram = lease.Slice(offset, (long)l * l); offset += (long)l * l;
        var small = lease.Slice(offset, (long)l * l); offset += (long)l * l;
        long p = SimtGemm.WorkspaceFor(device, l, l, rows);
        var partial = lease.Slice(offset, p); offset += p;
        return new Scratch(gram, small, partial);
    }

    /// <summary>
    /// Orthonormalizes the columns of <paramref name="y"/> (rows×l, dense workspace; clobbered) into
    /// <paramref name="destination"/> using <paramref name="other"/> (same shape) for ping-pong, and returns the
    /// accumulated R (row-major l×l, f64) with Y = Q·R. <paramref name="singlePass"/>: one (possibly shifted) pass,
    /// for intermediate products that only need to be well conditioned. Synchronizes the stream (host Cholesky).
    /// </summary>
    internal static double[] Orthonormalize(ComputeDevice device, MatrixRef y, MatrixRef other, MatrixRef destination,
        Scratch scratch, bool singlePass = false)
    {
        int l = y.Cols, rows = y.Rows;
        var total = Identity(l);
        var src = y;
        bool srcIsY = true;
        var gram = MatrixRef.Dense(scratch.Gram, l, l);
        var rinv = MatrixRef.Dense(scratch.Small, l, l);
        var hostGram = new float[l * l];
        var c = new double[l * l];
        var r = new double[l * l];
        for (int pass = 1; ; pass++)
        {
            SimtGemm.Multiply(device, src.T, src, gram, 1f, 0f, scratch.Partial);
            scratch.Gram.SubView(0, (long)l * l).CopyToCPU(device.Stream, hostGram);
            device.Synchronize();
            double deviation = 0, trace = 0;
            for (int i = 0; i < l * l; i++)
            {
                c[i] = hostGram[i];
                deviation = Math.Max(deviation, Math.Abs(c[i] - (i % (l + 1) == 0 ? 1 : 0)));
            }
            for (int i = 0; i < l; i++) trace += c[i * l + i];
            if (pass == 1) RequireUsableGradient(trace);
            bool last = singlePass || pass >= 4 || (pass >= 2 && deviation <= 0.1);
            if (!SmallDense.Cholesky(c, l, r))
            {
                double shift = 11.0 * ((double)rows * l + (double)l * (l + 1)) * UnitRoundoff * Math.Max(trace, double.Epsilon);
                for (int attempt = 0; ; attempt++)
                {
                    for (int i = 0; i < l; i++) c[i * l + i] += shift;
                    if (SmallDense.Cholesky(c, l, r)) break;
                    if (attempt > 40) throw new InvalidOperationException("CholeskyQR: the Gram matrix is not finite.");
                    shift *= 10;
                }
                if (!singlePass) last = false; // a shifted pass leaves Q well conditioned but not yet orthonormal
            }
            var inv = SmallDense.InvertUpper(r, l);
            var invF = new float[l * l];
            for (int i = 0; i < invF.Length; i++) invF[i] = (float)inv[i];
            scratch.Small.SubView(0, (long)l * l).CopyFromCPU(device.Stream, invF);
            var dst = last ? destination : (srcIsY ? other : y);
            SimtGemm.Multiply(device, src, rinv, dst, 1f, 0f, default, splitsOverride: 1);
            total = SmallDense.Multiply(r, total, l);
            if (last) return total;
            src = dst;
            srcIsY = !srcIsY;
        }
    }

    // Every caller orthonormalizes a product of the gradient (G·Ω, Gᵀ·P, G·Z), so a Gram matrix of zero trace means
    // that product is exactly zero, and a non-finite one that the gradient holds NaN or ∞.
    private static void RequireUsableGradient(double trace)
    {
        if (!double.IsFinite(trace))
            throw new ArgumentException("gradient holds NaN or ∞ values (its product with the basis is not finite); no subspace is computed.", "gradient");
        if (trace == 0)
            throw new ArgumentException(
                "gradient is zero (or orthogonal to the given basis): its product with the basis is exactly zero, so every subspace is " +
                "equally dominant and none is computed. Keep the previous basis for this step (basis is left unchanged).", "gradient");
    }

    internal static double[] Identity(int n)
    {
        var a = new double[n * n];
        for (int i = 0; i < n; i++) a[i * n + i] = 1;
        return a;
    }
}
