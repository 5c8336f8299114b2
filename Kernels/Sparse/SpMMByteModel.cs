namespace Kernels.Sparse;

/// <summary>Which implementation <see cref="SpMM"/> runs.</summary>
public enum SpMMPath
{
    /// <summary>Let the byte model decide (the default).</summary>
    Auto,
    /// <summary>Tiled-CSL weights scattered into shared tiles on the tile engine (load as sparse, compute as dense).</summary>
    Sparse,
    /// <summary>The engine's dense GEMM on the matrix's cached dense copy (decoded on the device on first use).</summary>
    Dense,
}

/// <summary>
/// The cost model <see cref="SpMM"/> decides with. Both paths issue the same 2·M·N·K tensor-core FLOPs; what differs is
/// weight traffic and the sparse path's fixed cost of zeroing and scattering a whole 128×64 shared tile per K step.
/// A path's cost, in bytes-at-bandwidth, is <c>max(traffic, FLOPs / ridge · compute factor)</c>:
/// <list type="bullet">
/// <item>dense traffic: <see cref="DenseBytesPerElement"/>·M·K + X + Y;</item>
/// <item>sparse traffic: <see cref="SparseFixedBytesPerElement"/>·M·K + <see cref="SparseBytesPerWord"/>·words + 4·(T + 2)
/// + X + Y + split-K partials (f32, written and read back);</item>
/// <item>compute: 2·M·N·K / <see cref="RidgeFlopsPerByte"/>, times <see cref="SparseComputeFactor"/> for the sparse path.</item>
/// </list>
/// </summary>
/// <remarks>
/// The constants are fitted, not guessed: no GPU was available to this project when they were set, so they come from
/// Flash-LLM's published A100 sparsity sweep (docs/flash-llm.md §3: cuBLAS flat at 0.40 ms; Flash-LLM 0.36 / 0.27 /
/// 0.22 / 0.175 / 0.135 ms at 60 / 70 / 80 / 90 / 100 %). Expressed in dense-weight bytes (0.40 ms ≙ 2 B per element),
/// a least-squares line through 60–90 % gives ≈ 0.57 B per element fixed plus ≈ 3.1 B per stored word (below the raw 4 B:
/// part of the word traffic hides behind the tile work), a break-even near 53 % sparsity, matching the paper's
/// loss below ≈ 55–60 %. The ridge (≈ 150 FLOP/B, mma.sync on A100/H100-class parts) and the 1.25 compute factor make
/// sparse lose at large N, where both paths are tensor-core bound and the scatter is pure overhead. Replace the
/// record (<see cref="SpMM.Model"/>) with constants measured on your GPU.
/// </remarks>
public sealed record SpMMByteModel
{
    /// <summary>The model with the constants fitted to Flash-LLM's published measurements.</summary>
    public static SpMMByteModel Default { get; } = new();

    /// <summary>Effective bytes per weight element on the dense path (fp16/bf16: 2).</summary>
    public double DenseBytesPerElement { get; init; } = 2.0;

    /// <summary>Effective bytes per weight element (stored or not) of the sparse path's zero-fill, scatter and tile work.</summary>
    public double SparseFixedBytesPerElement { get; init; } = 0.57;

    /// <summary>Effective bytes per stored Tiled-CSL word (raw size 4).</summary>
    public double SparseBytesPerWord { get; init; } = 3.1;

    /// <summary>FLOPs the tensor cores do in the time one byte streams from memory.</summary>
    public double RidgeFlopsPerByte { get; init; } = 150.0;

    /// <summary>How much slower the sparse path's tensor-core work is than the dense path's when compute-bound.</summary>
    public double SparseComputeFactor { get; init; } = 1.25;

    /// <summary>Estimates both paths for a product of an M×K matrix of <paramref name="words"/> stored words with N tokens.</summary>
    public SpMMEstimate Estimate(int m, int k, int n, long words, int tiles, int splits, int activationBytes = 2, int outputBytes = 2)
    {
        double mk = (double)m * k;
        double xy = (double)n * k * activationBytes + (double)n * m * outputBytes;
        double partials = splits > 1 ? 2.0 * 4.0 * splits * n * m : 0;
        double compute = 2.0 * m * n * k / RidgeFlopsPerByte;
        double denseCompulsory = 2.0 * mk + xy;
        double sparseCompulsory = 4.0 * words + 4.0 * (tiles + TiledCsl.ExtraOffsets) + xy;
        double denseCost = Math.Max(DenseBytesPerElement * mk + xy, compute);
        double sparseTraffic = SparseFixedBytesPerElement * mk + SparseBytesPerWord * words + 4.0 * (tiles + TiledCsl.ExtraOffsets) + xy + partials;
        double sparseCost = Math.Max(sparseTraffic, compute * SparseComputeFactor);
        return new SpMMEstimate(denseCompulsory, sparseCompulsory, denseCost, sparseCost);
    }
}

/// <summary>What the byte model says about one product.</summary>
/// <param name="DenseCompulsoryBytes">Dense weights + X + Y: the least the dense path must move.</param>
/// <param name="SparseCompulsoryBytes">Tiled-CSL words and offsets + X + Y: the least the sparse path must move.</param>
/// <param name="DenseCost">Modelled dense cost in bytes-at-bandwidth.</param>
/// <param name="SparseCost">Modelled sparse cost in bytes-at-bandwidth.</param>
public readonly record struct SpMMEstimate(double DenseCompulsoryBytes, double SparseCompulsoryBytes, double DenseCost, double SparseCost)
{
    /// <summary>The cheaper path.</summary>
    public SpMMPath Cheaper => SparseCost < DenseCost ? SpMMPath.Sparse : SpMMPath.Dense;

    /// <summary>Modelled speed-up of sparse over dense (above 1: sparse wins).</summary>
    public double SparseSpeedup => DenseCost / SparseCost;
}
