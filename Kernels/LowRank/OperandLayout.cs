namespace Kernels.LowRank;

/// <summary>
/// How a GEMM operand is stored, as a struct type parameter: ILGPU specializes the kernel per layout at compile time,
/// so one loop serves every transposition with no runtime branch and no copy of the loop.
/// </summary>
internal interface IOperandLayout
{
    /// <summary>False: the logical rows×cols matrix is row-major with leading dimension ld (element (i, j) at i·ld + j).
    /// True: it is stored transposed (element (i, j) at j·ld + i).</summary>
    bool Transposed { get; }
}

/// <summary>Row-major storage of the logical matrix.</summary>
internal readonly struct NormalLayout : IOperandLayout
{
    public bool Transposed => false;
}

/// <summary>The logical matrix is the transpose of a row-major stored one.</summary>
internal readonly struct TransposedLayout : IOperandLayout
{
    public bool Transposed => true;
}
